package hwaccel

import (
	"context"
	"strings"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/transcode/av"
)

// nvenc is NVIDIA's encoder. h264_nvenc takes software NV12 frames and
// uploads them itself, so it needs no device of ours.
type nvenc struct{}

func (nvenc) Name() string    { return "nvenc" }
func (nvenc) Encoder() string { return "h264_nvenc" }

// nvencPreset maps an x264 preset onto NVENC's p1 (fastest) .. p7.
func nvencPreset(name string) string {
	return mapPreset(name, [numPresets]string{"p1", "p1", "p2", "p3", "p4", "p4", "p5", "p6", "p7", "p7"}, "p4")
}

// Options: a p-preset with the low-latency tuning, CBR, no B-frames, no
// reordering delay, IDR keyframes exactly every GOP.
func (nvenc) Options(s Settings) map[string]string {
	o := map[string]string{
		"preset":      nvencPreset(s.Preset),
		"tune":        "ll",
		"profile":     profile(s),
		"bf":          "0",
		"zerolatency": "1",
		"delay":       "0", // return each packet as soon as it is encoded
		"forced-idr":  "1",
		"no-scenecut": "1",
	}
	if rateControl(s, o) {
		o["rc"] = "cbr"
	}
	return o
}

// EncoderConfig takes NV12 frames; device is not used (NVENC picks the
// first capable GPU).
func (b nvenc) EncoderConfig(s Settings, _ string) av.VideoEncoderConfig {
	return baseConfig(b, s, astiav.PixelFormatNv12)
}

// The NVIDIA driver's libraries that FFmpeg loads at run time.
const (
	libCUDA   = "libcuda.so.1"
	libNVENC  = "libnvidia-encode.so.1"
	cudaHint  = "install the NVIDIA driver or run the container with --gpus all"
	nvencHint = "install the NVIDIA driver's encode library (Debian: libnvidia-encode1), " +
		"or run the container with NVIDIA_DRIVER_CAPABILITIES=compute,video,utility"
)

// Probe checks the driver libraries, then encodes with h264_nvenc.
func (b nvenc) Probe(ctx context.Context, _ string) Status {
	st := Status{Backend: b.Name(), Encoder: b.Encoder(), Device: "cuda"}
	if !hasEncoder(b.Encoder()) {
		st.Reason = notInBuild(b.Encoder())
		return st
	}
	if st.Reason = libraryReason(libCUDA, loadLibrary(libCUDA), cudaHint); st.Reason != "" {
		return st
	}
	if st.Reason = libraryReason(libNVENC, loadLibrary(libNVENC), nvencHint); st.Reason != "" {
		return st
	}
	if err := probeEncode(ctx, b, ""); err != nil {
		st.Reason = nvencReason(err)
		return st
	}
	st.Usable = true
	return st
}

// nvencReason words an h264_nvenc open or encode error once the driver
// libraries load. FFmpeg 5.1 answers EPERM ("Operation not permitted")
// when it cannot load or use the driver's libraries, ENOSYS ("Function
// not implemented") when no GPU has an encoder ("No capable devices
// found") or the driver is too old for its NVENC API, AVERROR_EXTERNAL
// when cuInit fails (no GPU visible), and ENOMEM when
// OpenEncodeSessionEx is refused, which is how the session limit of
// GeForce cards shows.
func nvencReason(err error) string {
	t := errText(err)
	switch {
	case strings.Contains(t, "function not implemented"):
		return "no NVENC-capable GPU (H100/H200 and other compute GPUs have NVDEC only), " +
			"or a driver too old for this FFmpeg's NVENC API: " + err.Error()
	case strings.Contains(t, "cannot allocate memory") || strings.Contains(t, "out of memory"):
		return "NVENC refused a session (the driver's limit of concurrent encodes, or GPU memory): " + err.Error()
	case strings.Contains(t, "external library"):
		return "CUDA found no usable GPU (cuInit failed): check nvidia-smi, or run the container with --gpus all: " + err.Error()
	case strings.Contains(t, "operation not permitted"):
		return "the NVIDIA driver libraries did not initialise (" + libCUDA + ", " + libNVENC +
			"): check that the driver matches the kernel module (nvidia-smi): " + err.Error()
	}
	return err.Error()
}
