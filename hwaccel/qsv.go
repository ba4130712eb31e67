package hwaccel

import (
	"context"
	"strings"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/transcode/av"
)

// qsv is Intel Quick Sync through libmfx. h264_qsv takes software NV12
// frames and uploads them itself, opening the default render node.
type qsv struct{}

func (qsv) Name() string    { return "qsv" }
func (qsv) Encoder() string { return "h264_qsv" }

// qsvPreset maps an x264 preset onto QSV's veryfast .. veryslow.
func qsvPreset(name string) string {
	return mapPreset(name, [numPresets]string{"veryfast", "veryfast", "veryfast", "faster", "fast",
		"medium", "slow", "slower", "veryslow", "veryslow"}, "medium")
}

// Options: preset, no B-frames, no lookahead, one frame in flight (low
// latency), IDR keyframes; maxrate = bitrate makes libmfx use CBR.
func (qsv) Options(s Settings) map[string]string {
	o := map[string]string{
		"preset":      qsvPreset(s.Preset),
		"profile":     profile(s),
		"bf":          "0",
		"look_ahead":  "0",
		"async_depth": "1",
		"forced_idr":  "1",
	}
	rateControl(s, o)
	return o
}

// EncoderConfig takes NV12 frames (the only software format h264_qsv
// takes); device is not used: libmfx opens the default render node.
func (b qsv) EncoderConfig(s Settings, _ string) av.VideoEncoderConfig {
	return baseConfig(b, s, astiav.PixelFormatNv12)
}

// Probe looks for an Intel render node, then encodes with h264_qsv.
func (b qsv) Probe(ctx context.Context, _ string) Status {
	st := Status{Backend: b.Name(), Encoder: b.Encoder()}
	if !hasEncoder(b.Encoder()) {
		st.Reason = notInBuild(b.Encoder())
		return st
	}
	node, reason := intelNode(renderNodes(), gpuVendor, nodeReason)
	st.Device = node
	if node == "" {
		st.Device = "/dev/dri/renderD*"
	}
	if reason != "" {
		st.Reason = reason
		return st
	}
	if err := probeEncode(ctx, b, ""); err != nil {
		st.Reason = qsvReason(err)
		return st
	}
	st.Usable = true
	return st
}

// intelNode picks the first render node of an Intel GPU that this process
// can open, or says why there is none.
func intelNode(nodes []string, vendor func(string) string, open func(string) string) (string, string) {
	if len(nodes) == 0 {
		return "", "no Intel GPU render node (/dev/dri/renderD*): QSV needs an Intel GPU; in a container map /dev/dri (--device /dev/dri)"
	}
	var others []string
	for _, n := range nodes {
		if v := vendor(n); v != "" && !strings.EqualFold(v, "0x8086") {
			others = append(others, n+" is "+vendorName(v))
			continue
		}
		if r := open(n); r != "" {
			return n, r
		}
		return n, ""
	}
	return "", "no Intel GPU render node (" + strings.Join(others, ", ") + "): QSV needs an Intel GPU"
}

// qsvReason words an h264_qsv open or encode error: libmfx answers
// "unsupported" or a generic external-library error when the media
// driver or the GPU generation does not fit.
func qsvReason(err error) string {
	t := errText(err)
	switch {
	case strings.Contains(t, "function not implemented") || strings.Contains(t, "external library") ||
		strings.Contains(t, "unknown error"):
		return "libmfx could not start an encode session: install the Intel media driver " +
			"(intel-media-va-driver-non-free) and check that this GPU generation is supported: " + err.Error()
	}
	return err.Error()
}
