// Package backoff is the reconnect and restart schedule shared by forward
// (slaves, the on_forward hook), RTSP camera pulls and transcode restarts.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with jitter: the first Fast waits
// (at least one) are Min, then each doubles, up to Max. Each wait is moved by up to
// ±Jitter of itself (0.25: ±25%) and never exceeds Max. The zero count
// starts at Min; Reset goes back there.
type Backoff struct {
	Min, Max time.Duration
	Fast     int
	Jitter   float64
	n        int
}

// Next returns the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := min(b.Max, b.Min<<min(max(b.n+1-max(b.Fast, 1), 0), 16))
	b.n++
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*rand.Float64()))
	}
	return min(b.Max, d)
}

// Reset starts the schedule again at Min (after a good run).
func (b *Backoff) Reset() { b.n = 0 }
