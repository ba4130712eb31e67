// Package hwaccel knows which H.264 encoders this box really has: one
// backend per encoder (nvenc, qsv, vaapi, software), each with its option
// map and a probe that opens the device and encodes real frames exactly
// as a stream would. A stream tries the backends of Chain in order and
// falls back to the next when one fails to open.
package hwaccel

import (
	"context"
	"io"
	"math"
	"strconv"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/internal/avstat"
	"github.com/podiumlive/podium/transcode/av"
)

// Settings is what a stream asks of its video encoder.
type Settings struct {
	Width, Height int
	FPS           float64
	GOP           int   // frames between keyframes
	Bitrate       int64 // bit/s
	Profile       string
	Preset        string // x264 names (veryfast...); each backend maps them to its own
}

// Backend is one H.264 encoder.
type Backend interface {
	Name() string                         // "nvenc", "qsv", "vaapi", "software"
	Encoder() string                      // the libav encoder: "h264_nvenc", ...
	Options(s Settings) map[string]string // the codec options for s
	EncoderConfig(s Settings, device string) av.VideoEncoderConfig
	// Probe opens the device and encodes a few real frames through
	// av.OpenVideoEncoder, as a stream would, and says why when it cannot.
	Probe(ctx context.Context, device string) Status
}

// Status is the outcome of a probe: an avstat.Encoder, which the UI reads
// without linking libav.
type Status = avstat.Encoder

// Software is the name of the libx264 backend, always last in a chain.
const Software = "software"

// Backends returns every backend, hardware first.
func Backends() []Backend {
	return []Backend{nvenc{}, qsv{}, vaapi{}, software{}}
}

// byName returns the backend called name, or nil.
func byName(name string) Backend {
	for _, b := range Backends() {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// Chain is the order a stream tries encoders in: the prefer entries in
// order, then software, always last. ["none"] means software only;
// unknown names and repeats are ignored (config validation rejects them).
func Chain(prefer []string) []Backend {
	var chain []Backend
	seen := map[string]bool{}
	for _, name := range prefer {
		if name == "none" {
			return []Backend{software{}}
		}
		b := byName(name)
		if b == nil || seen[name] || name == Software {
			continue
		}
		seen[name] = true
		chain = append(chain, b)
	}
	return append(chain, software{})
}

// ProbeAll probes every backend on device ("" = each one's default), one
// after another: encoders open devices that do not like being raced.
func ProbeAll(ctx context.Context, device string) []Status {
	var st []Status
	for _, b := range Backends() {
		st = append(st, b.Probe(ctx, device))
	}
	return st
}

// WriteTable writes st as an aligned table: BACKEND ENCODER DEVICE USABLE
// REASON.
func WriteTable(w io.Writer, st []Status) { avstat.WriteTable(w, st) }

// frameRate turns fps into a rational: whole rates exactly, NTSC rates
// as n*1000/1001, others to a thousandth.
func frameRate(fps float64) astiav.Rational {
	if fps <= 0 {
		return astiav.NewRational(30, 1)
	}
	if r := math.Round(fps); math.Abs(fps-r) < 1e-3 {
		return astiav.NewRational(int(r), 1)
	}
	if n := math.Round(fps * 1.001); math.Abs(fps-n*1000/1001) < 1e-3 {
		return astiav.NewRational(int(n)*1000, 1001)
	}
	return astiav.NewRational(int(math.Round(fps*1000)), 1000)
}

// gop is s.GOP, or two seconds of frames.
func gop(s Settings) int {
	if s.GOP > 0 {
		return s.GOP
	}
	fps := s.FPS
	if fps <= 0 {
		fps = 30
	}
	return int(2*fps + 0.5)
}

// baseConfig is the part of every backend's encoder config that depends
// only on s: milliseconds timestamps, as the pipeline sends them.
func baseConfig(b Backend, s Settings, pix astiav.PixelFormat) av.VideoEncoderConfig {
	return av.VideoEncoderConfig{
		Codec:       b.Encoder(),
		Options:     b.Options(s),
		Width:       s.Width,
		Height:      s.Height,
		PixelFormat: pix,
		TimeBase:    astiav.NewRational(1, 1000),
		FrameRate:   frameRate(s.FPS),
		GOP:         gop(s),
		Bitrate:     s.Bitrate,
	}
}

// rateControl returns the VBV options shared by every encoder: peak at the
// target bitrate, two seconds of buffer. None when no bitrate is set.
func rateControl(s Settings, opts map[string]string) bool {
	if s.Bitrate <= 0 {
		return false
	}
	opts["maxrate"] = strconv.FormatInt(s.Bitrate, 10)
	opts["bufsize"] = strconv.FormatInt(2*s.Bitrate, 10)
	return true
}

// profile is s.Profile, or high.
func profile(s Settings) string {
	if s.Profile == "" {
		return "high"
	}
	return s.Profile
}
