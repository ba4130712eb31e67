// Package avstat holds what the libav stages report (a transcode job's
// stats, a hardware encoder's probe outcome) as plain types with no cgo,
// so that the web server (ui/) and anything else that only reads them
// never links libav. transcode and hwaccel produce them; `make lint`
// keeps ui/ from importing those two.
package avstat

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
)

// State of a transcode job.
type State string

// The states of a transcode job.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed"
	StateStopped    State = "stopped"
)

// Transcode is a snapshot of one transcode job, for the API and the
// dashboard.
type Transcode struct {
	Input  stream.Key `json:"-"`
	Output stream.Key `json:"-"`
	State  State

	InputVideo, InputAudio   string // "h264 1280x720", "speex 16000 Hz mono"
	OutputVideo, OutputAudio string // "h264 640x360 (copy)", "aac 44100 Hz mono 64k"
	// Encoder is the video encoder in use ("copy", "libx264", "h264_nvenc").
	Encoder string
	// Hardware is true when Encoder runs on a GPU or Quick Sync.
	Hardware bool
	// Fallbacks lists hardware encoders that failed to open, with why.
	Fallbacks []string

	// Speed is media seconds produced per wall-clock second (1.0 = real time).
	Speed         float64
	FramesDecoded uint64
	FramesEncoded uint64
	// Errors counts skipped corrupt packets; Restarts the pipeline restarts.
	Errors    uint64
	Restarts  int
	LastError string
	Since     time.Time
}

// Encoder is the outcome of probing one video encoder backend.
type Encoder struct {
	Backend, Encoder, Device string
	Usable                   bool
	Reason                   string // why not, and what to do; "" when usable
}

// WriteTable writes st as an aligned table: BACKEND ENCODER DEVICE USABLE
// REASON.
func WriteTable(w io.Writer, st []Encoder) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tENCODER\tDEVICE\tUSABLE\tREASON")
	for _, s := range st {
		usable, reason := "no", s.Reason
		if s.Usable {
			usable = "yes"
		}
		if reason == "" {
			reason = "-"
		}
		dev := s.Device
		if dev == "" {
			dev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Backend, s.Encoder, dev, usable, reason)
	}
	_ = tw.Flush() // a failed write to a terminal or pipe has no one to tell
}

// CHeap is glibc's malloc heap, where libav's memory lives (bytes).
type CHeap struct {
	// Arena is what the arenas took from the kernel (sbrk and heap maps);
	// Mmap what large allocations mapped on their own.
	Arena, Mmap uint64
	// InUse is allocated and not freed (Mmap included); Free is free
	// inside the arenas (resident unless trimmed).
	InUse, Free uint64
	// Chunks counts the free chunks: fragments.
	Chunks uint64
}
