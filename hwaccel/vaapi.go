package hwaccel

import (
	"context"
	"strings"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/transcode/av"
)

// vaapi is VA-API on a render node (Intel, AMD). h264_vaapi only takes
// VAAPI frames: the encoder gets a device and a frames pool and uploads
// each NV12 frame (transcode/av's hwframes).
type vaapi struct{}

func (vaapi) Name() string    { return "vaapi" }
func (vaapi) Encoder() string { return "h264_vaapi" }

// vaapiProfile maps a profile name onto h264_vaapi's.
func vaapiProfile(s Settings) string {
	if p := profile(s); p != "baseline" {
		return p
	}
	return "constrained_baseline"
}

// Options: CBR when a bitrate is set, no B-frames, the profile. VA-API
// has no presets.
func (vaapi) Options(s Settings) map[string]string {
	o := map[string]string{
		"profile": vaapiProfile(s),
		"bf":      "0",
	}
	if rateControl(s, o) {
		o["rc_mode"] = "CBR"
	}
	return o
}

// EncoderConfig uploads NV12 frames to device ("" = libav's default).
func (b vaapi) EncoderConfig(s Settings, device string) av.VideoEncoderConfig {
	c := baseConfig(b, s, astiav.PixelFormatNv12)
	c.HWDevice = astiav.HardwareDeviceTypeVAAPI
	c.HWDevicePath = device
	return c
}

// Probe checks the render node, then encodes through it.
func (b vaapi) Probe(ctx context.Context, device string) Status {
	st := Status{Backend: b.Name(), Encoder: b.Encoder(), Device: device}
	if !hasEncoder(b.Encoder()) {
		st.Reason = notInBuild(b.Encoder())
		return st
	}
	if st.Device == "" {
		st.Device = defaultRenderNode
		if nodes := renderNodes(); len(nodes) > 0 {
			st.Device = nodes[0]
		}
	}
	if st.Reason = nodeReason(st.Device); st.Reason != "" {
		return st
	}
	if err := probeEncode(ctx, b, st.Device); err != nil {
		st.Reason = vaapiReason(st.Device, err)
		return st
	}
	st.Usable = true
	return st
}

// vaapiReason words an h264_vaapi open or encode error on node.
func vaapiReason(node string, err error) string {
	t := errText(err)
	switch {
	case strings.Contains(t, "create vaapi device"):
		return "no VA-API driver works on " + node + " (install intel-media-va-driver or mesa-va-drivers; " +
			"set LIBVA_DRIVER_NAME if the wrong one loads): " + err.Error()
	case strings.Contains(t, "function not implemented") || strings.Contains(t, "invalid argument"):
		return "the VA-API driver on " + node + " has no H.264 encoder for this profile/size " +
			"(try low_power on recent Intel GPUs): " + err.Error()
	}
	return err.Error()
}
