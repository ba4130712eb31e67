// Package ratelog turns a repeated event (a write failure on a full disk,
// a refused start) into one log line per interval that says how many
// happened: the log stays readable while the event repeats.
package ratelog

import (
	"sync"
	"time"
)

// Counter counts events between log lines. The zero value is ready; it is
// safe for concurrent use.
type Counter struct {
	mu      sync.Mutex
	last    time.Time
	pending int
}

// Tick counts one event at now. When interval has passed since the last
// line, it returns true and the number of events since then (this one
// included): the caller logs one line with it.
func (c *Counter) Tick(now time.Time, interval time.Duration) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending++
	if !c.last.IsZero() && now.Sub(c.last) < interval {
		return 0, false
	}
	n := c.pending
	c.pending, c.last = 0, now
	return n, true
}
