package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podiumlive/podium/bench/internal/latency"
	"github.com/podiumlive/podium/bench/internal/proc"
)

// latencyStats are matched hops, also the JSON shape.
type latencyStats struct {
	Frames    int   `json:"frames_matched"`
	SinkVideo int64 `json:"sink_video_frames"`
	latency.Quantiles
}

func summarize(ds []time.Duration, sinkVideo int64) latencyStats {
	return latencyStats{Frames: len(ds), SinkVideo: sinkVideo, Quantiles: latency.Summarize(ds)}
}

// sideResult is one master's row of a phase, also the JSON shape.
type sideResult struct {
	Server            string       `json:"server"`
	CPUPct            float64      `json:"cpu_pct"`
	CPUPerStreamDest  float64      `json:"cpu_pct_per_stream_dest"`
	RSSMB             float64      `json:"rss_mb_peak"`
	Procs             int          `json:"procs"`
	SinkCPUPct        float64      `json:"sink_cpu_pct"`
	SinkRSSMB         float64      `json:"sink_rss_mb_peak"`
	Latency           latencyStats `json:"hop_latency"`
	Probes            []probeStats `json:"probes"`
	Pushes            int          `json:"pushes"`
	PushSessions      int          `json:"push_sessions"` // > pushes: some push reconnected
	MinShare          float64      `json:"dest_min_share"`
	PublisherRestarts int64        `json:"publisher_restarts"`
}

// probeStats is one probe's hop: a stream to one destination.
type probeStats struct {
	Name string `json:"name"`
	latencyStats
}

// phaseResult is one destination count: nginx-rtmp first, then Podium.
type phaseResult struct {
	Dests          int          `json:"dests"`
	WindowS        float64      `json:"window_s"`
	LatencyWindowS float64      `json:"latency_window_s"`
	MachineBusyPct float64      `json:"machine_busy_pct"`
	Sides          []sideResult `json:"servers"`
	Ratio          float64      `json:"ratio_podium_nginx_cpu_per_stream_dest"`
	failures       []string
	perf           *proc.Perf // a perf recording of podium in this phase's window, or nil
	nginxPerf      *proc.Perf // and of nginx-rtmp's master and worker, the same seconds
}

type result struct {
	Bench           string        `json:"bench"`
	N               int           `json:"n"`
	Dests           []int         `json:"dests"`
	FixtureMbit     float64       `json:"fixture_mbit_s"`
	Phases          []phaseResult `json:"phases"`
	MarginalNginx   float64       `json:"marginal_cpu_pct_per_stream_dest_nginx"`
	MarginalPodium  float64       `json:"marginal_cpu_pct_per_stream_dest_podium"`
	MarginalRatio   float64       `json:"marginal_ratio"`
	TargetRatio     float64       `json:"target_ratio_max"`
	TargetLatencyMS float64       `json:"target_hop_latency_ms_max"`
	OK              bool          `json:"ok"`
}

func printPhase(w io.Writer, o options, ph phaseResult) {
	fmt.Fprintf(w, "\nforward: %d destination(s) x %d streams per master (%d pushes each), CPU window %.1f s, machine %.0f%% busy (all cores), then %.0f s of latency probes\n\n",
		ph.Dests, o.n, o.n*ph.Dests, ph.WindowS, ph.MachineBusyPct, ph.LatencyWindowS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "master\tCPU % (1 core)\tCPU %/stream·dest\tRSS MB\tsink CPU %\tsink RSS MB\thop median ms\thop p95 ms\tframes\tdest min share\tpush sessions\tpub restarts\t")
	for _, r := range ph.Sides {
		fmt.Fprintf(tw, "%s\t%.2f\t%.4f\t%.1f\t%.2f\t%.1f\t%.2f\t%.2f\t%d\t%.2f\t%d/%d\t%d\t\n", r.Server, r.CPUPct, r.CPUPerStreamDest,
			r.RSSMB, r.SinkCPUPct, r.SinkRSSMB, r.Latency.MedianMS, r.Latency.P95MS, r.Latency.Frames,
			r.MinShare, r.PushSessions, r.Pushes, r.PublisherRestarts)
	}
	_ = tw.Flush()
	for _, r := range ph.Sides {
		fmt.Fprintf(w, "%s hop per probe, median / p95 ms:", r.Server)
		for _, p := range r.Probes {
			fmt.Fprintf(w, "  %s %.2f / %.2f", p.Name, p.MedianMS, p.P95MS)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "ratio podium/nginx-rtmp, CPU per stream·destination: %.2f (target <= 1)\n", ph.Ratio)
}

func summary(w io.Writer, res *result) {
	fmt.Fprintf(w, "\nsummary: %d streams per master, fixture %.2f Mbit/s; hop = sink arrival - master arrival of the same frame (includes the sink's own nginx-rtmp relay, the same for both)\n\n",
		res.N, res.FixtureMbit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dests\tbusy %\tnginx %/stream·dest\tpodium %/stream·dest\tratio\tnginx hop med/p95 ms\tpodium hop med/p95 ms\t")
	for _, ph := range res.Phases {
		n, p := ph.Sides[0], ph.Sides[1]
		fmt.Fprintf(tw, "%d\t%.0f\t%.4f\t%.4f\t%.2f\t%.2f / %.2f\t%.2f / %.2f\t\n", ph.Dests, ph.MachineBusyPct,
			n.CPUPerStreamDest, p.CPUPerStreamDest, ph.Ratio, n.Latency.MedianMS, n.Latency.P95MS, p.Latency.MedianMS, p.Latency.P95MS)
	}
	_ = tw.Flush()
	// The slope between the smallest and the largest D: what one more push
	// costs, without the publishers' ingest that every D pays once.
	lo, hi := 0, 0
	for i, ph := range res.Phases {
		if ph.Dests < res.Phases[lo].Dests {
			lo = i
		}
		if ph.Dests > res.Phases[hi].Dests {
			hi = i
		}
	}
	if a, b := res.Phases[lo], res.Phases[hi]; b.Dests > a.Dests {
		k := float64(res.N * (b.Dests - a.Dests))
		res.MarginalNginx = (b.Sides[0].CPUPct - a.Sides[0].CPUPct) / k
		res.MarginalPodium = (b.Sides[1].CPUPct - a.Sides[1].CPUPct) / k
		if res.MarginalNginx > 0 {
			res.MarginalRatio = res.MarginalPodium / res.MarginalNginx
		}
		fmt.Fprintf(w, "\nmarginal CPU per added stream·destination (D=%d -> D=%d, different windows): nginx-rtmp %.4f%%, podium %.4f%%, ratio %.2f\n",
			a.Dests, b.Dests, res.MarginalNginx, res.MarginalPodium, res.MarginalRatio)
	}
	res.OK = true
	for _, ph := range res.Phases {
		res.OK = res.OK && len(ph.failures) == 0
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(w, "%s\n", b)
}

// sinkKey is a pushed stream as the sink logs it.
type sinkKey struct{ app, name string }

type sinkGot struct {
	bytes    int64
	sessions int
}

// accessLine is nginx-rtmp's default ("combined") access log line:
// $remote_addr [$time_local] $command "$app" "$name" "$args" -
// $bytes_received $bytes_sent "$pageurl" "$flashver" ($session_readable_time)
var accessLine = regexp.MustCompile(`^\S+ \[[^\]]*\] (.*?) "([^"]*)" "([^"]*)" "([^"]*)" - (\d+) (\d+) `)

// sinkSessions sums, per app and stream, the bytes the sink received in
// its publish sessions (one log line each, written when a session ends).
func sinkSessions(path string) (map[sinkKey]sinkGot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	defer f.Close()
	got := map[sinkKey]sinkGot{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil || !strings.Contains(m[1], "PUBLISH") {
			continue
		}
		n, _ := strconv.ParseInt(m[5], 10, 64)
		k := sinkKey{m[2], m[3]}
		g := got[k]
		g.bytes += n
		g.sessions++
		got[k] = g
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return got, nil
}
