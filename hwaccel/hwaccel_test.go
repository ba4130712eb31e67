package hwaccel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/transcode/av"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// settingsCases are the Settings the golden option maps are written for.
func settingsCases() map[string]Settings {
	return map[string]Settings{
		"720p30_default": {Width: 1280, Height: 720, FPS: 30, GOP: 60, Bitrate: 1_500_000},
		"1080p25_main_fast": {Width: 1920, Height: 1080, FPS: 25, GOP: 50, Bitrate: 4_000_000,
			Profile: "main", Preset: "fast"},
		"360p_baseline_ultrafast": {Width: 640, Height: 360, FPS: 29.97, GOP: 60, Bitrate: 600_000,
			Profile: "baseline", Preset: "ultrafast"},
		"no_bitrate": {Width: 1280, Height: 720, FPS: 30, GOP: 60},
	}
}

func TestOptionsGolden(t *testing.T) {
	for _, b := range Backends() {
		for name, s := range settingsCases() {
			t.Run(b.Name()+"/"+name, func(t *testing.T) {
				got, err := json.MarshalIndent(b.Options(s), "", "  ") // keys sorted
				require.NoError(t, err)
				got = append(got, '\n')
				file := filepath.Join("testdata", "options", b.Name()+"_"+name+".json")
				if *update {
					require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
					require.NoError(t, os.WriteFile(file, got, 0o644))
				}
				want, err := os.ReadFile(file)
				require.NoError(t, err, "run go test ./hwaccel -update to create it")
				require.Equal(t, string(want), string(got))
			})
		}
	}
}

// TestOptionsKnownToFFmpeg opens each encoder with its option map for
// every golden case. Without the hardware the open fails, but FFmpeg
// applies the options first and returns those it does not know, which
// av.OpenVideoEncoder reports: no map may carry a name FFmpeg 5.1 lacks.
func TestOptionsKnownToFFmpeg(t *testing.T) {
	for _, b := range Backends() {
		for name, s := range settingsCases() {
			cfg := b.EncoderConfig(s, "")
			cfg.HWDevice = 0 // h264_vaapi then reaches avcodec_open2 and fails there
			e, err := av.OpenVideoEncoder(cfg)
			e.Close()
			if err != nil {
				require.NotContains(t, err.Error(), "not recognised", "%s/%s", b.Name(), name)
			}
		}
	}
	// The check itself works on an encoder that fails to open.
	cfg := nvenc{}.EncoderConfig(settingsCases()["720p30_default"], "")
	cfg.Options["nosuch"] = "1"
	e, err := av.OpenVideoEncoder(cfg)
	e.Close()
	require.ErrorContains(t, err, "options not recognised: nosuch")
}

func TestEncoderConfig(t *testing.T) {
	s := settingsCases()["720p30_default"]
	for _, tc := range []struct {
		b      Backend
		device string
		codec  string
		pix    astiav.PixelFormat
		hw     astiav.HardwareDeviceType
		path   string
	}{
		{software{}, "/dev/dri/renderD128", "libx264", astiav.PixelFormatYuv420P, astiav.HardwareDeviceTypeNone, ""},
		{nvenc{}, "", "h264_nvenc", astiav.PixelFormatNv12, astiav.HardwareDeviceTypeNone, ""},
		{qsv{}, "", "h264_qsv", astiav.PixelFormatNv12, astiav.HardwareDeviceTypeNone, ""},
		{vaapi{}, "/dev/dri/renderD129", "h264_vaapi", astiav.PixelFormatNv12, astiav.HardwareDeviceTypeVAAPI, "/dev/dri/renderD129"},
		{vaapi{}, "", "h264_vaapi", astiav.PixelFormatNv12, astiav.HardwareDeviceTypeVAAPI, ""},
	} {
		c := tc.b.EncoderConfig(s, tc.device)
		require.Equal(t, tc.codec, c.Codec)
		require.Equal(t, tc.b.Encoder(), c.Codec)
		require.Equal(t, tc.pix, c.PixelFormat, tc.codec)
		require.Equal(t, tc.hw, c.HWDevice, tc.codec)
		require.Equal(t, tc.path, c.HWDevicePath, tc.codec)
		require.Equal(t, tc.b.Options(s), c.Options)
		require.Equal(t, 1280, c.Width)
		require.Equal(t, 720, c.Height)
		require.Equal(t, astiav.NewRational(1, 1000), c.TimeBase)
		require.Equal(t, astiav.NewRational(30, 1), c.FrameRate)
		require.Equal(t, 60, c.GOP)
		require.Equal(t, int64(1_500_000), c.Bitrate)
	}
	require.Equal(t, 50, gop(Settings{FPS: 25}), "two seconds when GOP is unset")
}

func TestFrameRate(t *testing.T) {
	for fps, want := range map[float64]astiav.Rational{
		30:     astiav.NewRational(30, 1),
		25:     astiav.NewRational(25, 1),
		29.97:  astiav.NewRational(30000, 1001),
		59.94:  astiav.NewRational(60000, 1001),
		23.976: astiav.NewRational(24000, 1001),
		12.5:   astiav.NewRational(12500, 1000),
		0:      astiav.NewRational(30, 1),
	} {
		require.Equal(t, want, frameRate(fps), "%g fps", fps)
	}
}

func TestChain(t *testing.T) {
	names := func(bs []Backend) []string {
		var n []string
		for _, b := range bs {
			n = append(n, b.Name())
		}
		return n
	}
	for _, tc := range []struct {
		prefer []string
		want   []string
	}{
		{nil, []string{"software"}},
		{[]string{"none"}, []string{"software"}},
		{[]string{"nvenc", "qsv", "vaapi"}, []string{"nvenc", "qsv", "vaapi", "software"}},
		{[]string{"vaapi", "nvenc"}, []string{"vaapi", "nvenc", "software"}},
		{[]string{"software", "nvenc"}, []string{"nvenc", "software"}},
		{[]string{"qsv", "bogus", "qsv"}, []string{"qsv", "software"}},
		{[]string{"nvenc", "none"}, []string{"software"}},
	} {
		require.Equal(t, tc.want, names(Chain(tc.prefer)), "%v", tc.prefer)
	}
	require.Equal(t, []string{"nvenc", "qsv", "vaapi", "software"}, names(Backends()))
}

func TestPresets(t *testing.T) {
	require.True(t, ValidPreset(""))
	require.True(t, ValidPreset("veryfast"))
	require.False(t, ValidPreset("p4"))
	require.Equal(t, "p1", nvencPreset("ultrafast"))
	require.Equal(t, "p7", nvencPreset("placebo"))
	require.Equal(t, "p4", nvencPreset("bogus"))
	require.Equal(t, "veryfast", qsvPreset("superfast"))
	require.Equal(t, "medium", qsvPreset(""))
}

// gpuHere reports what this box has, so that TestProbeAllHere asserts the
// reasons for a box without any GPU and skips what does not apply.
func gpuHere() (cuda, dri bool) {
	return loadLibrary(libCUDA) == nil, len(renderNodes()) > 0
}

func TestProbeAllHere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := av.Live()
	st := ProbeAll(ctx, "")
	require.Equal(t, before, av.Live(), "probes free everything")
	require.Len(t, st, 4)
	byBackend := map[string]Status{}
	for _, s := range st {
		require.Equal(t, s.Usable, s.Reason == "", "%+v", s)
		byBackend[s.Backend] = s
	}
	require.Equal(t, Status{Backend: "software", Encoder: "libx264", Device: "cpu", Usable: true}, byBackend["software"])

	cuda, dri := gpuHere()
	if !cuda {
		require.Equal(t, Status{Backend: "nvenc", Encoder: "h264_nvenc", Device: "cuda",
			Reason: "libcuda.so.1 not found: install the NVIDIA driver or run the container with --gpus all"}, byBackend["nvenc"])
	}
	if !dri {
		require.Equal(t, Status{Backend: "qsv", Encoder: "h264_qsv", Device: "/dev/dri/renderD*",
			Reason: "no Intel GPU render node (/dev/dri/renderD*): QSV needs an Intel GPU; in a container map /dev/dri (--device /dev/dri)"},
			byBackend["qsv"])
		require.Equal(t, Status{Backend: "vaapi", Encoder: "h264_vaapi", Device: "/dev/dri/renderD128",
			Reason: "/dev/dri/renderD128 not found: no GPU render node, or map /dev/dri into the container (--device /dev/dri)"},
			byBackend["vaapi"])
		v := vaapi{}.Probe(ctx, "/dev/dri/renderD130")
		require.Equal(t, "/dev/dri/renderD130", v.Device)
		require.True(t, strings.HasPrefix(v.Reason, "/dev/dri/renderD130 not found: "), v.Reason)
	}
}

func TestProbeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := software{}.Probe(ctx, "")
	if !st.Usable { // the encode may win the race against ctx
		require.Contains(t, st.Reason, "libx264 probe did not finish: context canceled")
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	WriteTable(&buf, []Status{
		{Backend: "nvenc", Encoder: "h264_nvenc", Device: "cuda", Reason: "libcuda.so.1 not found: install the NVIDIA driver"},
		{Backend: "qsv", Encoder: "h264_qsv", Reason: "no Intel GPU"},
		{Backend: "software", Encoder: "libx264", Device: "cpu", Usable: true},
	})
	require.Equal(t, ""+
		"BACKEND   ENCODER     DEVICE  USABLE  REASON\n"+
		"nvenc     h264_nvenc  cuda    no      libcuda.so.1 not found: install the NVIDIA driver\n"+
		"qsv       h264_qsv    -       no      no Intel GPU\n"+
		"software  libx264     cpu     yes     -\n", buf.String())
}

// The error texts below were captured from FFmpeg 5.1 (Debian 12) and
// glibc 2.36 on a box without a GPU, and from the cases FFmpeg's sources
// name.
func TestReasons(t *testing.T) {
	err := dlopenError("libcuda.so.1: cannot open shared object file: No such file or directory")
	require.ErrorIs(t, err, errLibMissing)
	require.Equal(t, "libcuda.so.1 not found: install the NVIDIA driver or run the container with --gpus all",
		libraryReason(libCUDA, err, cudaHint))
	err = dlopenError("libnvidia-encode.so.1: wrong ELF class: ELFCLASS32")
	require.NotErrorIs(t, err, errLibMissing)
	require.Equal(t, "libnvidia-encode.so.1 does not load (libnvidia-encode.so.1: wrong ELF class: ELFCLASS32): reinstall the driver that provides it",
		libraryReason(libNVENC, err, nvencHint))
	require.Empty(t, libraryReason(libCUDA, nil, cudaHint))

	for _, tc := range []struct {
		reason func(error) string
		err    string
		prefix string
	}{
		{nvencReason, "open h264_nvenc: Function not implemented", "no NVENC-capable GPU (H100/H200 and other compute GPUs have NVDEC only)"},
		{nvencReason, "open h264_nvenc: Cannot allocate memory", "NVENC refused a session"},
		{nvencReason, "open h264_nvenc: Generic error in an external library", "CUDA found no usable GPU (cuInit failed)"},
		{nvencReason, "open h264_nvenc: Operation not permitted", "the NVIDIA driver libraries did not initialise"},
		{nvencReason, "open h264_nvenc: Invalid argument", "open h264_nvenc: Invalid argument"},
		{qsvReason, "open h264_qsv: Function not implemented", "libmfx could not start an encode session"},
		{qsvReason, "open h264_qsv: Generic error in an external library", "libmfx could not start an encode session"},
		{func(err error) string { return vaapiReason("/dev/dri/renderD128", err) },
			"open h264_vaapi: create vaapi device /dev/dri/renderD128: Generic error in an external library",
			"no VA-API driver works on /dev/dri/renderD128"},
		{func(err error) string { return vaapiReason("/dev/dri/renderD128", err) },
			"open h264_vaapi: Function not implemented", "the VA-API driver on /dev/dri/renderD128 has no H.264 encoder"},
	} {
		got := tc.reason(errors.New(tc.err))
		require.True(t, strings.HasPrefix(got, tc.prefix), "%q gives %q", tc.err, got)
		require.True(t, strings.HasSuffix(got, tc.err), "%q keeps libav's words: %q", tc.err, got)
	}

	require.Equal(t, "/dev/dri/renderD128 not found: no GPU render node, or map /dev/dri into the container (--device /dev/dri)",
		nodeError("/dev/dri/renderD128", &os.PathError{Op: "open", Path: "/dev/dri/renderD128", Err: os.ErrNotExist}))
	require.Equal(t, "permission denied on /dev/dri/renderD128: add the user to the render group (usermod -aG render USER; in a container --group-add render)",
		nodeError("/dev/dri/renderD128", &os.PathError{Op: "open", Path: "/dev/dri/renderD128", Err: os.ErrPermission}))
}

func TestIntelNode(t *testing.T) {
	vendors := map[string]string{"/dev/dri/renderD128": "0x10de", "/dev/dri/renderD129": "0x8086"}
	vendor := func(n string) string { return vendors[n] }
	ok := func(string) string { return "" }
	denied := func(n string) string { return "permission denied on " + n }

	node, reason := intelNode(nil, vendor, ok)
	require.Empty(t, node)
	require.Contains(t, reason, "no Intel GPU render node (/dev/dri/renderD*)")

	node, reason = intelNode([]string{"/dev/dri/renderD128", "/dev/dri/renderD129"}, vendor, ok)
	require.Equal(t, "/dev/dri/renderD129", node)
	require.Empty(t, reason)

	node, reason = intelNode([]string{"/dev/dri/renderD128"}, vendor, ok)
	require.Empty(t, node)
	require.Equal(t, "no Intel GPU render node (/dev/dri/renderD128 is NVIDIA): QSV needs an Intel GPU", reason)

	node, reason = intelNode([]string{"/dev/dri/renderD129"}, vendor, denied)
	require.Equal(t, "/dev/dri/renderD129", node)
	require.Equal(t, "permission denied on /dev/dri/renderD129", reason)

	node, reason = intelNode([]string{"/dev/dri/renderD130"}, vendor, ok) // vendor unknown: try it
	require.Equal(t, "/dev/dri/renderD130", node)
	require.Empty(t, reason)
}
