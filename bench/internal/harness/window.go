package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/podiumlive/podium/bench/internal/proc"
)

// Window is a measurement window as it ran.
type Window struct {
	Seconds        float64 // from first's end to last's end
	MachineBusyPct float64 // all cores, from /proc/stat
}

// Measure runs a measurement window of d: first (snapshot), then sample
// once a second and once at the end (sample RSS, check liveness), then
// last (snapshot); a nil function is skipped. An error of any of them, or
// ctx ending, ends the window with that error.
func Measure(ctx context.Context, d time.Duration, first, sample, last func() error) (Window, error) {
	var w Window
	busy0, total0, err := proc.MachineCPU()
	if err != nil {
		return w, err
	}
	if err := call(first); err != nil {
		return w, err
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return w, fmt.Errorf("interrupted: %w", ctx.Err())
		case <-tick.C:
		case <-time.After(d - time.Since(start)):
		}
		if err := call(sample); err != nil {
			return w, err
		}
	}
	if err := call(last); err != nil {
		return w, err
	}
	w.Seconds = time.Since(start).Seconds()
	busy1, total1, err := proc.MachineCPU()
	if err != nil {
		return w, err
	}
	w.MachineBusyPct = float64(busy1-busy0) / float64(max(total1-total0, 1)) * 100
	return w, nil
}

func call(f func() error) error {
	if f == nil {
		return nil
	}
	return f()
}
