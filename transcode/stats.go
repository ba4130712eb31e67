package transcode

import (
	"sync"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
)

// State of a transcode job.
type State string

const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed"
	StateStopped    State = "stopped"
)

// Stats is a snapshot of one job, for the API and the dashboard.
type Stats struct {
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

// jobStats is the live, lock-guarded version of Stats.
type jobStats struct {
	mu         sync.Mutex
	s          Stats
	mediaStart time.Duration
	mediaLast  time.Duration
	mediaSet   bool
	wallStart  time.Time
}

func (j *jobStats) update(f func(s *Stats)) {
	j.mu.Lock()
	f(&j.s)
	j.mu.Unlock()
}

// media records output media time for the speed figure.
func (j *jobStats) media(t time.Duration) {
	j.mu.Lock()
	if !j.mediaSet {
		j.mediaStart, j.wallStart, j.mediaSet = t, time.Now(), true
	}
	if t > j.mediaLast {
		j.mediaLast = t
	}
	j.mu.Unlock()
}

func (j *jobStats) snapshot() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.s
	s.Fallbacks = append([]string(nil), j.s.Fallbacks...)
	if j.mediaSet {
		if wall := time.Since(j.wallStart).Seconds(); wall > 0.5 {
			s.Speed = (j.mediaLast - j.mediaStart).Seconds() / wall
		}
	}
	return s
}
