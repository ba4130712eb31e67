package hwaccel

import (
	"context"
	"strconv"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/transcode/av"
)

// software is libx264 on the CPU: always last in a chain, and the backend
// every box has.
type software struct{}

func (software) Name() string    { return Software }
func (software) Encoder() string { return "libx264" }

// x264Threads caps libx264's threads per stream: with zerolatency they are
// slices, and a box runs many streams. Four slices also stay well under
// the NALU count that muxers accept per access unit.
const x264Threads = 4

// Options: the preset (veryfast by default), zerolatency (no lookahead,
// no frame threads, no B-frames), capped VBR, keyframes exactly every GOP.
func (software) Options(s Settings) map[string]string {
	preset := s.Preset
	if preset == "" {
		preset = "veryfast"
	}
	o := map[string]string{
		"preset":       preset,
		"tune":         "zerolatency",
		"profile":      profile(s),
		"bf":           "0",
		"sc_threshold": "0", // no scene-cut keyframes: segments cut on the GOP
		"forced-idr":   "1",
		"threads":      strconv.Itoa(x264Threads),
	}
	rateControl(s, o)
	return o
}

// EncoderConfig takes yuv420p frames; device is not used.
func (b software) EncoderConfig(s Settings, _ string) av.VideoEncoderConfig {
	return baseConfig(b, s, astiav.PixelFormatYuv420P)
}

// Probe encodes frames with libx264.
func (b software) Probe(ctx context.Context, _ string) Status {
	st := Status{Backend: b.Name(), Encoder: b.Encoder(), Device: "cpu"}
	if !hasEncoder(b.Encoder()) {
		st.Reason = notInBuild(b.Encoder())
		return st
	}
	if err := probeEncode(ctx, b, ""); err != nil {
		st.Reason = err.Error()
		return st
	}
	st.Usable = true
	return st
}
