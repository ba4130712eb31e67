// Command forward measures what forwarding (pushing every stream of a vhost
// to slave servers) costs in Podium and in nginx-rtmp's `push`, side by side
// in the same time window: N ffmpeg publishers per master, each stream
// pushed to D destinations on a sink nginx-rtmp, for D in a list (1, 4, 16).
// Per D it samples each master's CPU time and RSS after a warmup, then the
// latency the forward hop adds (the same frames played from the master and
// from the sink), and checks from the sinks' access logs that every
// destination received the stream. See bench/README.md, section "Forward".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/latency"
	"github.com/podiumlive/podium/bench/internal/proc"
)

type options struct {
	env      harness.Env
	n        int
	dests    []int
	duration time.Duration
	warmup   time.Duration
	latency  time.Duration
	probes   int
	perfOut  string
	minShare float64
}

func main() {
	var o options
	var dests string
	var quick bool
	o.env.Flags()
	flag.IntVar(&o.n, "n", 8, "streams (publishers) per master")
	flag.StringVar(&dests, "dests", "1,4,16", "destination counts, one phase each")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "CPU measurement window per phase")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before the CPU window starts")
	flag.DurationVar(&o.latency, "lat", 10*time.Second, "latency window per phase (after the CPU window, with the probes playing)")
	flag.IntVar(&o.probes, "probes", 2, "streams per master whose forward hop is probed (on the first and the last destination)")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium (into this file) and nginx-rtmp (FILE.nginx) with perf during the CPU window of the last phase, print podium's top symbols and where each spends its CPU (perf costs both CPU: don't quote that phase's ratio)")
	flag.Float64Var(&o.minShare, "min-share", 0.7, "fail if a destination received less than this share of the bytes the fixture's bitrate predicts for its session")
	flag.BoolVar(&quick, "quick", false, "short windows (-d 8s -warmup 3s -lat 5s unless given): a smoke run, not numbers to quote")
	harness.ParseFlags()
	latency.SilenceLal()

	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			o.duration = 8 * time.Second
		}
		if !set["warmup"] {
			o.warmup = 3 * time.Second
		}
		if !set["lat"] {
			o.latency = 5 * time.Second
		}
	}
	for f := range strings.SplitSeq(dests, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			slog.Error("bad -dests", "value", dests)
			os.Exit(2)
		}
		o.dests = append(o.dests, v)
	}
	harness.Main("forward", func(ctx context.Context) error { return run(ctx, o) })
}

// side is one master under test with its sink: Podium with forward, or
// nginx-rtmp with push.
type side struct {
	name     string
	app      string // the sink's application prefix: app0 … app(D-1)
	port     int
	srv      *proc.Server
	sinkPort int
	sinkDir  string
	sink     *proc.Server
	pubs     []*proc.Peer
	probes   []*latency.Probe

	u0, u1, su0, su1   proc.Usage
	maxRSS, sinkMaxRSS int64
	restarts0          int64
}

func (s *side) masterURL(i int) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/s%d", s.port, i)
}

func (s *side) sinkURL(dest, i int) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s%d/s%d", s.sinkPort, s.app, dest, i)
}

func run(ctx context.Context, o options) error {
	if o.n < 1 || len(o.dests) == 0 || o.duration <= 0 || o.warmup < 0 || o.latency <= 0 || o.probes < 0 {
		return errors.New("need -n >= 1, -dests, -d > 0, -warmup >= 0, -lat > 0, -probes >= 0")
	}
	r, err := o.env.Begin("podium-bench-forward-", "ffmpeg", "ffprobe")
	if err != nil {
		return err
	}
	defer r.End() // each phase runs its own process groups
	fix, err := fixture.Make(ctx, o.env.Fixtures, fixture.Class480p())
	if err != nil {
		return err
	}

	res := result{Bench: "forward", N: o.n, Dests: o.dests, FixtureMbit: fix.Mbit(),
		TargetRatio: 1, TargetLatencyMS: 1}
	for i, d := range o.dests {
		perf := ""
		if i == len(o.dests)-1 {
			perf = o.perfOut
		}
		ph, err := runPhase(ctx, o, fix, filepath.Join(r.Dir, fmt.Sprintf("d%d", d)), d, perf)
		if err != nil {
			return fmt.Errorf("%d destinations: %w", d, err)
		}
		printPhase(os.Stdout, o, ph)
		ph.perf.Print()
		proc.PrintAccounts(os.Stdout, []string{"nginx-rtmp", "podium"}, []*proc.Perf{ph.nginxPerf, ph.perf},
			o.duration.Seconds(), o.n*d, "stream·destination")
		res.Phases = append(res.Phases, ph)
	}
	summary(os.Stdout, &res)
	var failures []string
	for _, ph := range res.Phases {
		failures = append(failures, ph.failures...)
	}
	return harness.Failed("forward", failures)
}

// runPhase measures one destination count: fresh sinks, masters and
// publishers, a warmup, the CPU window, the latency window, then the masters
// are stopped and the sinks' access logs say what each destination got.
func runPhase(ctx context.Context, o options, fix fixture.File, dir string, d int, perfOut string) (phaseResult, error) {
	ph := phaseResult{Dests: d}
	// Two groups: the sinks outlive the masters, so that they log the end of
	// every push session before they stop.
	var sinks, load proc.Group
	defer sinks.StopAll(5 * time.Second)
	defer load.StopAll(5 * time.Second)

	ports, err := proc.FreePorts(5)
	if err != nil {
		return ph, err
	}
	ngx := &side{name: "nginx-rtmp", app: "n", port: ports[0], sinkPort: ports[1], sinkDir: filepath.Join(dir, "nginx-sink")}
	pod := &side{name: "podium", app: "p", port: ports[2], sinkPort: ports[3], sinkDir: filepath.Join(dir, "podium-sink")}
	sides := []*side{ngx, pod}
	for _, s := range sides {
		var apps strings.Builder
		for k := range d {
			fmt.Fprintf(&apps, "application %s%d { live on; record off; }\n        ", s.app, k)
		}
		if s.sink, err = proc.StartNginx(ctx, &sinks, o.env.Nginx, o.env.Module, s.sinkDir, s.sinkPort, apps.String()); err != nil {
			return ph, fmt.Errorf("%s sink: %w", s.name, err)
		}
	}

	var push, dests strings.Builder
	for k := range d {
		fmt.Fprintf(&push, " push rtmp://127.0.0.1:%d/%s%d;", ngx.sinkPort, ngx.app, k)
		if k > 0 {
			dests.WriteString(", ")
		}
		fmt.Fprintf(&dests, "%q", fmt.Sprintf("rtmp://127.0.0.1:%d/%s%d/[stream]", pod.sinkPort, pod.app, k))
	}
	if ngx.srv, err = proc.StartNginx(ctx, &load, o.env.Nginx, o.env.Module, filepath.Join(dir, "nginx"), ngx.port,
		"application live { live on; record off;"+push.String()+" }"); err != nil {
		return ph, err
	}
	if pod.srv, err = proc.StartPodium(ctx, &load, o.env.Podium, filepath.Join(dir, "podium"), pod.port, ports[4],
		"vhosts: [{name: __defaultVhost__, forward: {destinations: ["+dests.String()+"]}}]\n"); err != nil {
		return ph, err
	}

	// Publishers, both masters interleaved.
	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	pubStart := time.Now()
	for i := range o.n {
		for _, s := range sides {
			p := proc.NewPeer(fmt.Sprintf("%s publisher s%d", s.name, i), fix.PublishArgs(s.masterURL(i))...)
			s.pubs = append(s.pubs, p)
			wg.Go(func() { p.Keep(loadCtx, &load) })
		}
	}
	slog.Info("phase running", "destinations", d, "streams_each", o.n, "pushes_each", o.n*d, "warmup", o.warmup)
	if err := proc.Sleep(ctx, 1500*time.Millisecond+o.warmup); err != nil {
		return ph, err
	}

	perf, ngxPerf, err := proc.StartPerfVsNginx(&sinks, perfOut, o.duration, pod.srv.Child.Cmd.Process.Pid, ngx.srv.Child.Cmd.Process.Pid)
	if err != nil {
		return ph, err
	}
	ph.nginxPerf = ngxPerf

	// The CPU window: both masters (and sinks) in the same seconds.
	sample := func(first bool) error {
		for _, s := range sides {
			for _, srv := range []*proc.Server{s.srv, s.sink} {
				if !srv.Child.Alive() {
					return fmt.Errorf("%s %s exited (%v):\n%s", s.name, srv.Child.Name, srv.Child.Err, srv.Logs)
				}
			}
			u, err := proc.GroupUsage(s.srv.Child.Cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			su, err := proc.GroupUsage(s.sink.Child.Cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("%s sink: %w", s.name, err)
			}
			s.maxRSS, s.sinkMaxRSS = max(s.maxRSS, u.RSS), max(s.sinkMaxRSS, su.RSS)
			if first {
				s.u0, s.su0, s.restarts0 = u, su, proc.Restarts(s.pubs)
			} else {
				s.u1, s.su1 = u, su
			}
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, func() error { return sample(true) }, func() error { return sample(false) }, nil)
	if err != nil {
		return ph, err
	}
	ph.WindowS, ph.MachineBusyPct = win.Seconds, win.MachineBusyPct

	// The latency window: probes on the first and last destination of the
	// first streams, both masters at once.
	probeCtx, stopProbes := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for _, s := range sides {
		for i := range min(o.probes, o.n) {
			for _, k := range slices.Compact([]int{0, d - 1}) {
				p := latency.NewProbe(fmt.Sprintf("s%d->%s%d", i, s.app, k), s.masterURL(i), s.sinkURL(k, i))
				s.probes = append(s.probes, p)
				pwg.Go(func() { p.Run(probeCtx) })
			}
		}
	}
	err = proc.Sleep(ctx, 2*time.Second) // connect + the GOP-cache burst
	if err == nil {
		for _, s := range sides {
			for _, p := range s.probes {
				p.SetActive(true)
			}
		}
		err = proc.Sleep(ctx, o.latency)
		for _, s := range sides {
			for _, p := range s.probes {
				p.SetActive(false)
			}
		}
	}
	stopProbes()
	pwg.Wait()
	if err != nil {
		return ph, err
	}
	ph.LatencyWindowS = o.latency.Seconds()

	// Stop publishers and masters; the sinks log each push session as it
	// ends, with the bytes it received.
	for _, s := range sides {
		if !s.srv.Child.Alive() {
			return ph, fmt.Errorf("%s exited (%v):\n%s", s.name, s.srv.Child.Err, s.srv.Logs)
		}
	}
	stopLoad()
	stopAt := time.Now()
	load.StopAll(5 * time.Second)
	if err := proc.Sleep(ctx, time.Second); err != nil {
		return ph, err
	}
	expected := fix.Rate() * stopAt.Sub(pubStart).Seconds()
	for _, s := range sides {
		r := s.result(o, ph.WindowS, d)
		got, err := sinkSessions(filepath.Join(s.sinkDir, "logs", "rtmp_access.log"))
		if err != nil {
			return ph, fmt.Errorf("%s sink: %w", s.name, err)
		}
		r.MinShare = 1e9
		for i := range o.n {
			for k := range d {
				g := got[sinkKey{fmt.Sprintf("%s%d", s.app, k), fmt.Sprintf("s%d", i)}]
				share := float64(g.bytes) / expected
				r.MinShare = min(r.MinShare, share)
				r.PushSessions += g.sessions
				if share < o.minShare {
					ph.failures = append(ph.failures, fmt.Sprintf("%d dests: %s: %s%d/s%d received %d bytes in %d session(s), expected about %.0f",
						d, s.name, s.app, k, i, g.bytes, g.sessions, expected))
				}
			}
		}
		r.Pushes = o.n * d
		for _, p := range s.probes {
			if ds, _, _ := p.Result(); len(ds) == 0 {
				ph.failures = append(ph.failures, fmt.Sprintf("%d dests: probe %s matched no frame (%s)", d, p.Name, p.LastErr()))
			}
		}
		ph.Sides = append(ph.Sides, r)
	}
	if n, p := ph.Sides[0].CPUPerStreamDest, ph.Sides[1].CPUPerStreamDest; n > 0 {
		ph.Ratio = p / n
	}
	perf.Wait()
	ph.nginxPerf.Wait()
	ph.perf = perf
	return ph, nil
}

// result is one side's row of a phase (the sink check is added after).
func (s *side) result(o options, window float64, d int) sideResult {
	clk := float64(proc.ClockTicks())
	cpu := float64(s.u1.Ticks-s.u0.Ticks) / clk / window * 100
	var ds []time.Duration
	var seen int64
	var probes []probeStats
	for _, p := range s.probes {
		pd, _, n := p.Result()
		ds = append(ds, pd...)
		seen += n
		probes = append(probes, probeStats{Name: p.Name, latencyStats: summarize(pd, n)})
	}
	return sideResult{
		Server: s.name, CPUPct: cpu, CPUPerStreamDest: cpu / float64(o.n*d),
		RSSMB: float64(s.maxRSS) / (1 << 20), Procs: s.u1.Procs,
		SinkCPUPct: float64(s.su1.Ticks-s.su0.Ticks) / clk / window * 100, SinkRSSMB: float64(s.sinkMaxRSS) / (1 << 20),
		Latency:           summarize(ds, seen),
		Probes:            probes,
		PublisherRestarts: proc.Restarts(s.pubs) - s.restarts0,
	}
}
