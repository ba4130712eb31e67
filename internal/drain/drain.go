// Package drain is the bounded shutdown of a stage's consumers: let those
// whose streams ended finish on their own, stop the rest after a bound.
package drain

import (
	"sync"
	"time"
)

// Wait waits for wg up to bound; then it calls cancel (if not nil) to stop
// whatever is still running, and waits for wg to end.
func Wait(wg *sync.WaitGroup, bound time.Duration, cancel func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
	}
	if cancel != nil {
		cancel()
	}
	<-done
}
