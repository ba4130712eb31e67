package transcode

import (
	"sync"
	"time"

	"github.com/podiumlive/podium/internal/avstat"
)

// State of a transcode job (avstat's, so that readers need no cgo).
type State = avstat.State

// The states of a transcode job.
const (
	StateStarting   = avstat.StateStarting
	StateRunning    = avstat.StateRunning
	StateRestarting = avstat.StateRestarting
	StateFailed     = avstat.StateFailed
	StateStopped    = avstat.StateStopped
)

// Stats is a snapshot of one job, for the API and the dashboard: an
// avstat.Transcode, which the UI reads without linking libav.
type Stats = avstat.Transcode

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
