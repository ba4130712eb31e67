package main

import (
	"fmt"
	"time"

	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
	"github.com/podiumlive/podium/bench/internal/scrape"
	"github.com/podiumlive/podium/internal/loadgen"
)

// sample is one row of the soak's record.
type sample struct {
	at                   time.Duration
	rssMB                []float64 // master, slave A, slave B
	anonMB               []float64 // their RssAnon: RSS less mapped files (code pages)
	goroutines, fds      int       // master's
	cInUse, cFree        float64   // master's C heap (glibc), MB
	heapMB               []float64 // each box's Go heap in use, MB
	dropped              float64   // packets dropped by slow readers, all boxes
	transErrors          float64   // corrupt packets the master's transcodes skipped
	reconnects           float64   // master's forward reconnects
	pubRestarts          int64     // publishers that had to be restarted
	playerEnds           int       // RTMP plays that ended
	hlsSegments, hlsErrs int
	churns, churnErrs    int
	lastErr              string
}

type report struct {
	o       options
	boxes   []*box
	samples []sample
}

func newReport(o options, boxes []*box) *report { return &report{o: o, boxes: boxes} }

func (r *report) sample(at time.Duration, pubs []*proc.Peer, players []*loadgen.Player, hls []*hlsPlayer, ch *churner) (sample, error) {
	s := sample{at: at}
	for i, b := range r.boxes {
		pid := b.srv.Child.Cmd.Process.Pid
		s.rssMB = append(s.rssMB, float64(proc.VmRSS(pid))/(1<<20))
		s.anonMB = append(s.anonMB, float64(proc.RssAnon(pid))/(1<<20))
		m, err := b.m.Metrics()
		if err != nil {
			return s, fmt.Errorf("%s: %w", b.name, err)
		}
		s.dropped += m.Sum("podium_dropped_packets_total")
		s.heapMB = append(s.heapMB, m["go_memstats_heap_inuse_bytes"]/(1<<20))
		if i == 0 {
			s.cInUse = m[`podium_c_heap_bytes{state="in_use"}`] / (1 << 20)
			s.cFree = m[`podium_c_heap_bytes{state="free"}`] / (1 << 20)
			s.goroutines, s.fds = int(m["go_goroutines"]), int(m["process_open_fds"])
			s.transErrors = m.Sum("podium_transcode_errors_total")
			s.reconnects = m.Sum("podium_forward_reconnects_total")
		}
	}
	s.pubRestarts = proc.Restarts(pubs)
	for _, p := range players {
		s.playerEnds += p.Stats().Ends
	}
	for _, h := range hls {
		n, e, last := h.stats()
		s.hlsSegments += n
		s.hlsErrs += e
		if last != "" {
			s.lastErr = last
		}
	}
	var last string
	s.churns, s.churnErrs, last = ch.stats()
	if last != "" {
		s.lastErr = last
	}
	r.samples = append(r.samples, s)
	return s, nil
}

// profiles saves every box's heap and goroutine profiles as PHASE-BOX
// (-pprof).
func (r *report) profiles(phase string) error {
	for _, b := range r.boxes {
		if err := b.m.SaveProfiles(r.o.pprof, phase+"-"+b.name); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	return nil
}

func (r *report) print(s sample) {
	if len(r.samples) == 1 {
		fmt.Printf("%8s %10s %10s %10s %6s %6s %6s %6s %6s %6s %5s %8s %7s %6s %8s %7s %8s %7s\n", "t", "master MB", "slaveA MB", "slaveB MB",
			"C-use", "C-free", "M-heap", "A-heap", "B-heap", "gor", "fds", "dropped", "t-errs", "recon", "pub-rst", "rtmp-end", "hls-seg", "hls-err")
	}
	fmt.Printf("%8s %10.1f %10.1f %10.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6d %5d %8.0f %7.0f %6.0f %8d %7d %8d %7d\n", s.at.Round(time.Second),
		s.rssMB[0], s.rssMB[1], s.rssMB[2], s.cInUse, s.cFree, s.heapMB[0], s.heapMB[1], s.heapMB[2], s.goroutines, s.fds, s.dropped, s.transErrors, s.reconnects,
		s.pubRestarts, s.playerEnds, s.hlsSegments, s.hlsErrs)
}

// summary prints the slopes and totals and checks -max-slope.
func (r *report) summary() error {
	var xs []float64
	ys := make([][]float64, len(r.boxes))
	anon := make([][]float64, len(r.boxes))
	for _, s := range r.samples {
		if s.at < r.o.warmup {
			continue
		}
		xs = append(xs, s.at.Hours())
		for i := range r.boxes {
			ys[i] = append(ys[i], s.rssMB[i])
			anon[i] = append(anon[i], s.anonMB[i])
		}
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	fmt.Printf("\nsoak summary (%v, %d samples after the %v warm-up):\n", last.at.Round(time.Second), len(xs), r.o.warmup)
	var failures []string
	for i, b := range r.boxes {
		slope := scrape.Slope(xs, ys[i])
		var mean float64
		for _, y := range ys[i] {
			mean += y
		}
		if len(ys[i]) > 0 {
			mean /= float64(len(ys[i]))
		}
		pct := 0.0
		if mean > 0 {
			pct = slope / mean * 100
		}
		fmt.Printf("  %-8s RSS %.1f -> %.1f MB; slope after warm-up %+.2f MB/h (%+.2f%%/h of %.1f MB)\n",
			b.name, first.rssMB[i], last.rssMB[i], slope, pct, mean)
		// The anonymous part (heaps, stacks) is what a leak grows; the rest
		// is the binary's and libraries' code pages, faulted in as code
		// runs for the first time and bounded by their size.
		fmt.Printf("  %-8s anon RSS %.1f -> %.1f MB; slope after warm-up %+.2f MB/h\n",
			"", first.anonMB[i], last.anonMB[i], scrape.Slope(xs, anon[i]))
		if i == 0 && r.o.maxSlope > 0 && pct > r.o.maxSlope {
			failures = append(failures, fmt.Sprintf("master RSS slope %.2f%%/h > %.2f%%/h", pct, r.o.maxSlope))
		}
	}
	fmt.Printf("  master goroutines %d -> %d, open files %d -> %d\n", first.goroutines, last.goroutines, first.fds, last.fds)
	fmt.Printf("  dropped packets %.0f, transcode errors %.0f, forward reconnects %.0f, publisher restarts %d\n",
		last.dropped, last.transErrors, last.reconnects, last.pubRestarts)
	fmt.Printf("  RTMP plays ended early %d, HLS segments fetched %d, HLS errors %d; churn cycles %d (errors %d)\n",
		last.playerEnds, last.hlsSegments, last.hlsErrs, last.churns, last.churnErrs)
	if last.lastErr != "" {
		fmt.Printf("  last player/churn error: %s\n", last.lastErr)
	}
	return harness.Failed("soak", failures)
}
