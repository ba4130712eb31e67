// Command relay measures the CPU a pure RTMP relay costs in Podium and in
// nginx-rtmp, side by side in the same time window: N ffmpeg publishers per
// server, each played by M ffmpeg players, all with -c copy. It samples each
// server's CPU time (utime+stime of its whole process group) and RSS after a
// warmup, checks that every player really received the stream, and prints a
// table plus one JSON line. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
)

// relayFixture is 20 s of 720p30 H.264 2.5 Mbit/s + AAC 128 kbit/s.
var relayFixture = fixture.Spec{Name: "relay-720p30-2500k-aac.flv", Size: "1280x720", FPS: 30, SampleRate: 44100,
	Video: []string{"-b:v", "2500k", "-g", "60"}, Audio: []string{"-c:a", "aac", "-b:a", "128k"}}

type options struct {
	env      harness.Env
	n, m     int
	duration time.Duration
	warmup   time.Duration
	perfOut  string
	minShare float64
}

func main() {
	var o options
	o.env.Flags()
	flag.IntVar(&o.n, "n", 8, "publishers (relayed streams) per server")
	flag.IntVar(&o.m, "m", 2, "players per stream")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before the window starts")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium (into this file) and nginx-rtmp (FILE.nginx) with perf during the window, print podium's top symbols and where each spends its CPU (perf adds CPU to both: don't quote that run's ratio)")
	flag.Float64Var(&o.minShare, "min-share", 0.5, "fail if a player received less than this share of the expected bytes")
	harness.ParseFlags()
	harness.Main("relay", func(ctx context.Context) error { return run(ctx, o) })
}

// player is an ffmpeg player whose stdout (the stream as FLV) is counted.
type player struct {
	*proc.Peer
	got counter
}

type counter struct{ atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.Add(int64(len(p)))
	return len(p), nil
}

// server is one relay under test.
type server struct {
	name    string
	port    int
	proc    *proc.Child
	logs    *proc.Tail
	pubs    []*proc.Peer
	players []*player

	u0, u1       proc.Usage
	maxRSS       int64
	bytes0       []int64
	bytes1       []int64
	pubRestarts0 int64
}

func (s *server) url(i int) string { return fmt.Sprintf("rtmp://127.0.0.1:%d/live/s%d", s.port, i) }

func run(ctx context.Context, o options) error {
	if o.n < 1 || o.m < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("need -n >= 1, -m >= 1, -d > 0, -warmup >= 0")
	}
	r, err := o.env.Begin("podium-bench-relay-", "ffmpeg", "ffprobe")
	if err != nil {
		return err
	}
	defer r.End()
	fix, err := fixture.Make(ctx, o.env.Fixtures, relayFixture)
	if err != nil {
		return err
	}
	srv, err := r.StartServers(ctx, "vhosts: [{name: __defaultVhost__}]\n", "application live { live on; record off; }")
	if err != nil {
		return err
	}
	ngx := &server{name: "nginx-rtmp", port: srv.NginxPort, proc: srv.Nginx.Child, logs: srv.Nginx.Logs}
	pod := &server{name: "podium", port: srv.PodiumPort, proc: srv.Podium.Child, logs: srv.Podium.Logs}
	servers := []*server{ngx, pod}

	// Publishers, both servers interleaved, then (after they are up) the players.
	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for i := range o.n {
		for _, s := range servers {
			p := proc.NewPeer(fmt.Sprintf("%s publisher s%d", s.name, i), fix.PublishArgs(s.url(i))...)
			s.pubs = append(s.pubs, p)
			wg.Go(func() { p.Keep(loadCtx, &r.Group) })
		}
	}
	if err := proc.Sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	for i := range o.n {
		for j := range o.m {
			for _, s := range servers {
				p := &player{Peer: proc.NewPeer(fmt.Sprintf("%s player s%d#%d", s.name, i, j),
					"-hide_banner", "-v", "error", "-nostdin", "-i", s.url(i), "-c", "copy", "-f", "flv", "pipe:1")}
				p.Stdout = func() io.Writer { return &p.got }
				s.players = append(s.players, p)
				wg.Go(func() { p.Keep(loadCtx, &r.Group) })
			}
		}
	}
	slog.Info("load running", "servers", len(servers), "publishers_each", o.n, "players_each", o.n*o.m, "warmup", o.warmup)
	if err := proc.Sleep(ctx, o.warmup); err != nil {
		return err
	}

	// Perf (optional) over the same window.
	perf, ngxPerf, err := proc.StartPerfVsNginx(&r.Group, o.perfOut, o.duration, pod.proc.Cmd.Process.Pid, ngx.proc.Cmd.Process.Pid)
	if err != nil {
		return err
	}

	// The window: snapshot, sample RSS and liveness every second, snapshot.
	first := func() (err error) {
		for _, s := range servers {
			if s.u0, err = proc.GroupUsage(s.proc.Cmd.Process.Pid); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.maxRSS = s.u0.RSS
			s.bytes0 = snapshot(s.players)
			s.pubRestarts0 = proc.Restarts(s.pubs)
		}
		return nil
	}
	sample := func() error {
		for _, s := range servers {
			if !s.proc.Alive() {
				return fmt.Errorf("%s exited during the window (%v):\n%s", s.name, s.proc.Err, s.logs)
			}
			u, err := proc.GroupUsage(s.proc.Cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.maxRSS = max(s.maxRSS, u.RSS)
		}
		return nil
	}
	last := func() (err error) {
		for _, s := range servers {
			if s.u1, err = proc.GroupUsage(s.proc.Cmd.Process.Pid); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.bytes1 = snapshot(s.players)
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, first, sample, last)
	if err != nil {
		return err
	}
	stopLoad()

	res := report(os.Stdout, o, servers, fix, win.Seconds, proc.ClockTicks(), win.MachineBusyPct)
	perf.Print()
	proc.PrintAccounts(os.Stdout, []string{"nginx-rtmp", "podium"}, []*proc.Perf{ngxPerf, perf}, o.duration.Seconds(), o.n, "stream")
	return harness.Failed("relay", res.failures)
}

func snapshot(ps []*player) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.got.Load()
	}
	return out
}

// serverResult is one server's row, also the JSON shape.
type serverResult struct {
	Server           string  `json:"server"`
	CPUPct           float64 `json:"cpu_pct"`
	CPUPctPerStream  float64 `json:"cpu_pct_per_stream"`
	CPUPctPerOutput  float64 `json:"cpu_pct_per_output"`
	RSSMB            float64 `json:"rss_mb_peak"`
	Procs            int     `json:"procs"`
	MbitOut          float64 `json:"mbit_s_out"`
	PlayerMBMin      float64 `json:"player_mb_min"`
	PlayerMBMax      float64 `json:"player_mb_max"`
	PlayerRestarts   int64   `json:"player_restarts"`
	PublisherRestart int64   `json:"publisher_restarts"`
}

type result struct {
	Bench           string         `json:"bench"`
	N               int            `json:"n"`
	M               int            `json:"m"`
	WindowS         float64        `json:"window_s"`
	FixtureMbit     float64        `json:"fixture_mbit_s"`
	MachineBusyPct  float64        `json:"machine_busy_pct"`
	Servers         []serverResult `json:"servers"`
	RatioPerStream  float64        `json:"ratio_podium_nginx_cpu_per_stream"`
	RatioPerMbit    float64        `json:"ratio_podium_nginx_cpu_per_mbit_out"`
	Target          float64        `json:"target_ratio_max"`
	OK              bool           `json:"ok"`
	failures        []string
	expectedPerPlay float64
}

func report(w io.Writer, o options, servers []*server, fix fixture.File, window float64, clk int64, busy float64) result {
	res := result{Bench: "relay", N: o.n, M: o.m, WindowS: window, MachineBusyPct: busy, Target: 1.5,
		FixtureMbit: fix.Mbit()}
	res.expectedPerPlay = fix.Rate() * window
	fmt.Fprintf(w, "\nrelay: %d streams x %d players per server, %.1f s window, fixture %.2f Mbit/s, machine %.0f%% busy (all cores)\n\n",
		o.n, o.m, window, res.FixtureMbit, busy)
	for _, s := range servers {
		cpu := float64(s.u1.Ticks-s.u0.Ticks) / float64(clk) / window * 100
		got := make([]float64, len(s.players))
		var sum int64
		for i := range s.players {
			d := s.bytes1[i] - s.bytes0[i]
			sum += d
			got[i] = float64(d)
			if float64(d) < o.minShare*res.expectedPerPlay {
				res.failures = append(res.failures, fmt.Sprintf("%s: %s got %d bytes, expected about %.0f (last stderr: %s)",
					s.name, s.players[i].Name, d, res.expectedPerPlay, strings.TrimSpace(s.players[i].Log.String())))
			}
		}
		r := serverResult{
			Server: s.name, CPUPct: cpu, CPUPctPerStream: cpu / float64(o.n), CPUPctPerOutput: cpu / float64(o.n*o.m),
			RSSMB: float64(s.maxRSS) / (1 << 20), Procs: s.u1.Procs, MbitOut: float64(sum) * 8 / window / 1e6,
			PlayerMBMin: slices.Min(got) / 1e6, PlayerMBMax: slices.Max(got) / 1e6,
			PlayerRestarts: proc.Restarts(s.players), PublisherRestart: proc.Restarts(s.pubs) - s.pubRestarts0,
		}
		res.Servers = append(res.Servers, r)
		fmt.Fprintf(w, "%s bytes per player in the window (expected ~%.1f MB each):", s.name, res.expectedPerPlay/1e6)
		for _, g := range got {
			fmt.Fprintf(w, " %.1f", g/1e6)
		}
		fmt.Fprintln(w, " MB")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tCPU % (1 core)\tCPU %/stream\tCPU %/output\tRSS MB (peak)\tMbit/s out\tprocs\tplayer restarts\t")
	for _, r := range res.Servers {
		fmt.Fprintf(tw, "%s\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%d\t%d\t\n", r.Server, r.CPUPct, r.CPUPctPerStream,
			r.CPUPctPerOutput, r.RSSMB, r.MbitOut, r.Procs, r.PlayerRestarts)
	}
	_ = tw.Flush()
	if len(res.Servers) == 2 && res.Servers[0].CPUPctPerStream > 0 {
		res.RatioPerStream = res.Servers[1].CPUPctPerStream / res.Servers[0].CPUPctPerStream
		if res.Servers[0].MbitOut > 0 && res.Servers[1].MbitOut > 0 {
			res.RatioPerMbit = (res.Servers[1].CPUPct / res.Servers[1].MbitOut) / (res.Servers[0].CPUPct / res.Servers[0].MbitOut)
		}
	}
	fmt.Fprintf(w, "\nratio podium/nginx-rtmp, CPU per relayed stream: %.2f (target <= %.1f)\n", res.RatioPerStream, res.Target)
	fmt.Fprintf(w, "ratio podium/nginx-rtmp, CPU per Mbit/s delivered: %.2f (cross-check: differs when one server delivered less)\n", res.RatioPerMbit)
	res.OK = len(res.failures) == 0
	b, _ := json.Marshal(res)
	fmt.Fprintf(w, "%s\n", b)
	return res
}
