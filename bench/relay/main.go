// Command relay measures the CPU a pure RTMP relay costs in Podium and in
// nginx-rtmp, side by side in the same time window: N ffmpeg publishers per
// server, each played by M ffmpeg players, all with -c copy. It samples each
// server's CPU time (utime+stime of its whole process group) and RSS after a
// warmup, checks that every player really received the stream, and prints a
// table plus one JSON line. See bench/README.md.
package main

import (
	"github.com/podiumlive/podium/bench/internal/proc"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	podium    string
	nginx     string
	module    string
	n, m      int
	duration  time.Duration
	warmup    time.Duration
	fixtures  string
	perfOut   string
	minShare  float64
	keepFiles bool
}

func main() {
	var o options
	flag.StringVar(&o.podium, "podium", "bin/podium", "podium binary to measure (build it with: go build -o bin/podium ./cmd/podium)")
	flag.StringVar(&o.nginx, "nginx", "nginx", "nginx binary")
	flag.StringVar(&o.module, "nginx-rtmp-module", "/usr/lib/nginx/modules/ngx_rtmp_module.so", "nginx-rtmp dynamic module")
	flag.IntVar(&o.n, "n", 8, "publishers (relayed streams) per server")
	flag.IntVar(&o.m, "m", 2, "players per stream")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before the window starts")
	flag.StringVar(&o.fixtures, "fixtures", filepath.Join(os.TempDir(), "podium-bench-fixtures"), "where the fixture FLV is cached")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium with perf during the window into this file and print its top symbols (perf adds a little CPU to podium: don't quote that run's ratio)")
	flag.Float64Var(&o.minShare, "min-share", 0.5, "fail if a player received less than this share of the expected bytes")
	flag.BoolVar(&o.keepFiles, "keep", false, "keep the temp dir with the configs and logs")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		slog.Error("relay bench failed", "err", err)
		os.Exit(1)
	}
}

// peer is one ffmpeg publisher or player, restarted if it exits early.
type peer struct {
	name     string
	args     []string
	bytes    atomic.Int64 // stdout bytes (players write the stream as FLV)
	restarts atomic.Int64
	log      *proc.Tail
}

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// server is one relay under test.
type server struct {
	name    string
	port    int
	proc    *proc.Child
	logs    *proc.Tail
	pubs    []*peer
	players []*peer

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
	for _, tool := range []string{"ffmpeg", "ffprobe", o.nginx, o.podium} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("need %s: %w", tool, err)
		}
	}
	if _, err := os.Stat(o.module); err != nil {
		return fmt.Errorf("nginx-rtmp module (packaging/deps-debian.sh installs it): %w", err)
	}
	podiumBin, err := filepath.Abs(o.podium)
	if err != nil {
		return fmt.Errorf("podium path: %w", err)
	}

	fix, err := fixture(ctx, o.fixtures)
	if err != nil {
		return err
	}
	slog.Info("fixture", "path", fix.path, "bytes", fix.size, "seconds", fix.seconds,
		"mbit_s", fmt.Sprintf("%.2f", float64(fix.size)*8/fix.seconds/1e6))

	dir, err := os.MkdirTemp("", "podium-bench-relay-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if o.keepFiles {
		slog.Info("keeping temp dir", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	var ps proc.Group
	defer ps.StopAll(5 * time.Second)

	ports, err := proc.FreePorts(3)
	if err != nil {
		return err
	}
	ngx, err := startNginx(ctx, &ps, o, filepath.Join(dir, "nginx"), ports[0])
	if err != nil {
		return err
	}
	pod, err := startPodium(ctx, &ps, podiumBin, filepath.Join(dir, "podium"), ports[1], ports[2])
	if err != nil {
		return err
	}
	servers := []*server{ngx, pod}

	// Publishers, both servers interleaved, then (after they are up) the players.
	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for i := range o.n {
		for _, s := range servers {
			p := &peer{
				name: fmt.Sprintf("%s publisher s%d", s.name, i),
				args: []string{"-hide_banner", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1",
					"-i", fix.path, "-c", "copy", "-f", "flv", s.url(i)},
				log: proc.NewTail(4096),
			}
			s.pubs = append(s.pubs, p)
			wg.Go(func() { keep(loadCtx, &ps, p, false) })
		}
	}
	if err := proc.Sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	for i := range o.n {
		for j := range o.m {
			for _, s := range servers {
				p := &peer{
					name: fmt.Sprintf("%s player s%d#%d", s.name, i, j),
					args: []string{"-hide_banner", "-v", "error", "-nostdin",
						"-i", s.url(i), "-c", "copy", "-f", "flv", "pipe:1"},
					log: proc.NewTail(4096),
				}
				s.players = append(s.players, p)
				wg.Go(func() { keep(loadCtx, &ps, p, true) })
			}
		}
	}
	slog.Info("load running", "servers", len(servers), "publishers_each", o.n, "players_each", o.n*o.m, "warmup", o.warmup)
	if err := proc.Sleep(ctx, o.warmup); err != nil {
		return err
	}

	// Perf (optional) over the same window.
	var perfRun *proc.Child
	if o.perfOut != "" {
		if _, err := exec.LookPath("perf"); err != nil {
			slog.Warn("-perf: perf not installed, skipping the profile")
		} else {
			cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pod.proc.Cmd.Process.Pid),
				"-o", o.perfOut, "--", "sleep", strconv.FormatFloat(o.duration.Seconds(), 'f', 1, 64))
			plog := proc.NewTail(4096)
			cmd.Stdout, cmd.Stderr = plog, plog
			if perfRun, err = ps.Start("perf", cmd); err != nil {
				return err
			}
		}
	}

	// The window: snapshot, sample RSS and liveness every second, snapshot.
	busy0, total0, err := proc.MachineCPU()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.u0, err = proc.GroupUsage(s.proc.Cmd.Process.Pid); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.maxRSS = s.u0.RSS
		s.bytes0 = snapshot(s.players)
		s.pubRestarts0 = restarts(s.pubs)
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < o.duration {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", ctx.Err())
		case <-tick.C:
		case <-time.After(o.duration - time.Since(start)):
		}
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
	}
	for _, s := range servers {
		if s.u1, err = proc.GroupUsage(s.proc.Cmd.Process.Pid); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.bytes1 = snapshot(s.players)
	}
	window := time.Since(start).Seconds()
	busy1, total1, err := proc.MachineCPU()
	if err != nil {
		return err
	}
	stopLoad()

	machineBusy := float64(busy1-busy0) / float64(max(total1-total0, 1)) * 100
	res := report(os.Stdout, o, servers, fix, window, proc.ClockTicks(), machineBusy)

	if perfRun != nil {
		select {
		case <-perfRun.Done:
		case <-time.After(15 * time.Second):
		}
		proc.PrintPerf(o.perfOut)
	}

	if len(res.failures) > 0 {
		return fmt.Errorf("relay check failed:\n  %s", strings.Join(res.failures, "\n  "))
	}
	return nil
}

// keep runs p until ctx ends, restarting it (after a pause) when it exits.
func keep(ctx context.Context, ps *proc.Group, p *peer, player bool) {
	for {
		cmd := exec.Command("ffmpeg", p.args...)
		if player {
			cmd.Stdout = counter{&p.bytes}
		}
		cmd.Stderr = p.log
		c, err := ps.Start(p.name, cmd)
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-c.Done:
		}
		if ctx.Err() != nil {
			return
		}
		p.restarts.Add(1)
		slog.Debug("peer exited, restarting", "peer", p.name, "err", c.Err, "log", p.log.String())
		if proc.Sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
}

func snapshot(ps []*peer) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.bytes.Load()
	}
	return out
}

func restarts(ps []*peer) int64 {
	var n int64
	for _, p := range ps {
		n += p.restarts.Load()
	}
	return n
}

// startNginx runs nginx-rtmp with one live application.
func startNginx(ctx context.Context, ps *proc.Group, o options, dir string, port int) (*server, error) {
	srv, err := proc.StartNginx(ctx, ps, o.nginx, o.module, dir, port, "application live { live on; record off; }")
	if err != nil {
		return nil, err
	}
	return &server{name: "nginx-rtmp", port: port, proc: srv.Child, logs: srv.Logs}, nil
}

// startPodium runs podium as a pure relay (no transcode, forward or HLS).
func startPodium(ctx context.Context, ps *proc.Group, bin, dir string, rtmpPort, httpPort int) (*server, error) {
	srv, err := proc.StartPodium(ctx, ps, bin, dir, rtmpPort, httpPort, "vhosts: [{name: __defaultVhost__}]\n")
	if err != nil {
		return nil, err
	}
	return &server{name: "podium", port: rtmpPort, proc: srv.Child, logs: srv.Logs}, nil
}

type fixtureFile struct {
	path    string
	size    int64
	seconds float64
}

// fixture makes (once, cached in dir) a 20 s 720p30 H.264 2.5 Mbit/s +
// AAC 128 kbit/s FLV, so publishers send it with -c copy.
func fixture(ctx context.Context, dir string) (fixtureFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fixtureFile{}, fmt.Errorf("fixture dir: %w", err)
	}
	path := filepath.Join(dir, "relay-720p30-2500k-aac.flv")
	if _, err := os.Stat(path); err != nil {
		slog.Info("making the fixture (once)", "path", path)
		tmp := path + ".tmp"
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-g", "60",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp)
			return fixtureFile{}, fmt.Errorf("make fixture: %w: %s", err, out)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fixtureFile{}, fmt.Errorf("make fixture: %w", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fixtureFile{}, fmt.Errorf("fixture: %w", err)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		return fixtureFile{}, fmt.Errorf("ffprobe fixture: %w", err)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || secs <= 0 {
		return fixtureFile{}, fmt.Errorf("fixture duration %q: %v", out, err)
	}
	return fixtureFile{path: path, size: st.Size(), seconds: secs}, nil
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

func report(w io.Writer, o options, servers []*server, fix fixtureFile, window float64, clk int64, busy float64) result {
	res := result{Bench: "relay", N: o.n, M: o.m, WindowS: window, MachineBusyPct: busy, Target: 1.5,
		FixtureMbit: float64(fix.size) * 8 / fix.seconds / 1e6}
	res.expectedPerPlay = float64(fix.size) / fix.seconds * window
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
					s.name, s.players[i].name, d, res.expectedPerPlay, strings.TrimSpace(s.players[i].log.String())))
			}
		}
		r := serverResult{
			Server: s.name, CPUPct: cpu, CPUPctPerStream: cpu / float64(o.n), CPUPctPerOutput: cpu / float64(o.n*o.m),
			RSSMB: float64(s.maxRSS) / (1 << 20), Procs: s.u1.Procs, MbitOut: float64(sum) * 8 / window / 1e6,
			PlayerMBMin: slices.Min(got) / 1e6, PlayerMBMax: slices.Max(got) / 1e6,
			PlayerRestarts: restarts(s.players), PublisherRestart: restarts(s.pubs) - s.pubRestarts0,
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
