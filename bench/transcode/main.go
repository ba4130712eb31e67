// Command transcode measures what normalizing K H.264 + Speex streams to
// H.264 (copied) + AAC costs in Podium, against "the SRS way": nginx-rtmp
// with one `ffmpeg -c:v copy -c:a aac` per stream, pulling live/sI and
// pushing transcode/sI back. Both run on this machine in the same time
// window with the same load. It reports CPU (% of one core) and RSS per
// stream, the ratios peer/Podium, and the latency the transcode hop adds
// (frames of the input and of its normalized twin matched by their bytes).
// See bench/README.md, section "Transcode".
package main

import (
	"github.com/podiumlive/podium/bench/internal/proc"

	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	podium    string
	nginx     string
	module    string
	k         int
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
	flag.IntVar(&o.k, "k", 8, "streams per system")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before the window starts (after every peer is started)")
	flag.StringVar(&o.fixtures, "fixtures", filepath.Join(os.TempDir(), "podium-bench-fixtures"), "where the fixture FLV is cached")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium with perf during the window into this file and print its top symbols (perf costs podium a little CPU: don't quote that run's ratio)")
	flag.Float64Var(&o.minShare, "min-share", 0.5, "fail if a player received less than this share of the expected bytes")
	flag.BoolVar(&o.keepFiles, "keep", false, "keep the temp dir with the configs and logs")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	silenceLal()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		slog.Error("transcode bench failed", "err", err)
		os.Exit(1)
	}
}

// peer is one ffmpeg publisher, transcoder or player, restarted if it exits.
type peer struct {
	name     string
	args     []string
	watch    *flvWatch // players: their FLV stdout
	restarts atomic.Int64
	cur      atomic.Pointer[proc.Child]
	log      *proc.Tail
}

// system is one side under test: Podium alone, or nginx-rtmp plus its
// per-stream ffmpeg transcoders.
type system struct {
	name        string
	port        int
	proc        *proc.Child
	logs        *proc.Tail
	inURL       func(i int) string
	outURL      func(i int) string
	pubs        []*peer
	transcoders []*peer
	players     []*peer
	probes      []*hopProbe

	idleRSS    int64
	s0, s1     sample
	peakRSS    int64
	peakAnon   int64
	sumRSS     int64
	nRSS       int64
	watch0     []flvCounts
	watch1     []flvCounts
	restarts0  int64
	transPIDs0 []int
}

// sample is one reading of a system's CPU time and memory: the server's
// process group, plus (peer) each transcoder's process group.
type sample struct {
	serverTicks, transTicks int64
	serverRSS, transRSS     int64
	serverAnon              int64 // RssAnon of the server process (heap, stacks; not mapped libraries)
	pss                     int64 // Pss of the server group + transcoders (shared pages split between sharers)
	transPIDs               []int // 0 where a transcoder was not running
}

func (s *system) sample() (sample, error) {
	var r sample
	u, err := proc.GroupUsage(s.proc.Cmd.Process.Pid)
	if err != nil {
		return r, fmt.Errorf("%s: %w", s.name, err)
	}
	r.serverTicks, r.serverRSS = u.Ticks, u.RSS
	r.serverAnon = rssAnon(s.proc.Cmd.Process.Pid)
	r.pss = groupPss(s.proc.Cmd.Process.Pid)
	for _, t := range s.transcoders {
		c := t.cur.Load()
		if c == nil || !c.Alive() {
			r.transPIDs = append(r.transPIDs, 0)
			continue
		}
		tu, err := proc.GroupUsage(c.Cmd.Process.Pid)
		if err != nil {
			r.transPIDs = append(r.transPIDs, 0)
			continue
		}
		r.transTicks += tu.Ticks
		r.transRSS += tu.RSS
		r.pss += groupPss(c.Cmd.Process.Pid)
		r.transPIDs = append(r.transPIDs, c.Cmd.Process.Pid)
	}
	return r, nil
}

func run(ctx context.Context, o options) error {
	if o.k < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("need -k >= 1, -d > 0, -warmup >= 0")
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

	dir, err := os.MkdirTemp("", "podium-bench-transcode-")
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
	pod, err := startPodium(ctx, &ps, podiumBin, filepath.Join(dir, "podium"), ports[0], ports[1])
	if err != nil {
		return err
	}
	ngx, err := startNginx(ctx, &ps, o, filepath.Join(dir, "nginx"), ports[2])
	if err != nil {
		return err
	}
	systems := []*system{pod, ngx}

	// Idle memory, before any stream.
	if err := proc.Sleep(ctx, time.Second); err != nil {
		return err
	}
	for _, s := range systems {
		u, err := proc.GroupUsage(s.proc.Cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("%s idle: %w", s.name, err)
		}
		s.idleRSS = u.RSS
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	spawn := func(p *peer) { wg.Go(func() { keep(loadCtx, &ps, p) }) }

	// Publishers, the two systems interleaved.
	for i := range o.k {
		for _, s := range systems {
			p := &peer{
				name: fmt.Sprintf("%s publisher s%d", s.name, i),
				args: []string{"-hide_banner", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1",
					"-i", fix.path, "-c", "copy", "-f", "flv", s.inURL(i)},
				log: proc.NewTail(4096),
			}
			s.pubs = append(s.pubs, p)
			spawn(p)
		}
	}
	if err := proc.Sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	// The peer's transcoders: SRS's own transcode engine is exactly this
	// ffmpeg command line, one process per stream. -ac 1 like SRS's
	// achannels (and Podium keeping mono): FLV Speex carries no channel
	// layout and ffmpeg 5.1's aac encoder refuses to open without one.
	for i := range o.k {
		p := &peer{
			name: fmt.Sprintf("%s transcoder s%d", ngx.name, i),
			args: []string{"-hide_banner", "-v", "error", "-nostdin", "-i", ngx.inURL(i),
				"-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "1", "-f", "flv", ngx.outURL(i)},
			log: proc.NewTail(4096),
		}
		ngx.transcoders = append(ngx.transcoders, p)
		spawn(p)
	}
	if err := proc.Sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	// Players of the normalized twins, and the latency probes.
	for i := range o.k {
		for _, s := range systems {
			p := &peer{
				name: fmt.Sprintf("%s player s%d", s.name, i),
				args: []string{"-hide_banner", "-v", "error", "-nostdin", "-rw_timeout", "15000000",
					"-i", s.outURL(i), "-c", "copy", "-f", "flv", "pipe:1"},
				watch: newFLVWatch(),
				log:   proc.NewTail(4096),
			}
			s.players = append(s.players, p)
			spawn(p)
			pr := newHopProbe(fmt.Sprintf("%s probe s%d", s.name, i), s.inURL(i), s.outURL(i))
			s.probes = append(s.probes, pr)
			wg.Go(func() { pr.run(loadCtx) })
		}
	}
	slog.Info("load running", "streams_each", o.k, "warmup", o.warmup, "window", o.duration)
	if err := proc.Sleep(ctx, o.warmup); err != nil {
		return err
	}

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

	// The window: snapshot, sample memory and liveness every second, snapshot.
	busy0, total0, err := proc.MachineCPU()
	if err != nil {
		return err
	}
	for _, s := range systems {
		if s.s0, err = s.sample(); err != nil {
			return err
		}
		s.watch0 = watchCounts(s.players)
		s.restarts0 = restarts(s.transcoders)
		for _, pr := range s.probes {
			pr.setActive(true)
		}
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
		for _, s := range systems {
			if !s.proc.Alive() {
				return fmt.Errorf("%s exited during the window (%v):\n%s", s.name, s.proc.Err, s.logs)
			}
			u, err := s.sample()
			if err != nil {
				return err
			}
			rss := u.serverRSS + u.transRSS
			s.peakRSS = max(s.peakRSS, rss)
			s.peakAnon = max(s.peakAnon, u.serverAnon)
			s.sumRSS += rss
			s.nRSS++
		}
	}
	for _, s := range systems {
		for _, pr := range s.probes {
			pr.setActive(false)
		}
		if s.s1, err = s.sample(); err != nil {
			return err
		}
		s.watch1 = watchCounts(s.players)
	}
	window := time.Since(start).Seconds()
	busy1, total1, err := proc.MachineCPU()
	if err != nil {
		return err
	}
	stopLoad()

	machineBusy := float64(busy1-busy0) / float64(max(total1-total0, 1)) * 100
	res := report(os.Stdout, o, pod, ngx, fix, window, proc.ClockTicks(), machineBusy)

	if perfRun != nil {
		select {
		case <-perfRun.Done:
		case <-time.After(15 * time.Second):
		}
		proc.PrintPerf(o.perfOut)
	}
	if len(res.failures) > 0 {
		return fmt.Errorf("transcode check failed:\n  %s", strings.Join(res.failures, "\n  "))
	}
	return nil
}

// rssAnon is /proc/PID/status RssAnon in bytes (0 when unreadable).
func rssAnon(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssAnon:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// groupPss sums /proc/PID/smaps_rollup Pss over the process group pgid
// (0 where unreadable).
func groupPss(pgid int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				sum += kb << 10
			}
		}
	}
	return sum
}

// keep runs p until ctx ends, restarting it (after a pause) when it exits.
func keep(ctx context.Context, ps *proc.Group, p *peer) {
	for {
		cmd := exec.Command("ffmpeg", p.args...)
		if p.watch != nil {
			p.watch.reset() // the previous process's stdout is fully copied once it was waited for
			cmd.Stdout = p.watch
		}
		cmd.Stderr = p.log
		c, err := ps.Start(p.name, cmd)
		if err != nil {
			return
		}
		p.cur.Store(c)
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

func watchCounts(ps []*peer) []flvCounts {
	out := make([]flvCounts, len(ps))
	for i, p := range ps {
		out[i] = p.watch.counts()
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

// startNginx runs nginx-rtmp with two applications, live (the encoders')
// and transcode (the transcoders' output).
func startNginx(ctx context.Context, ps *proc.Group, o options, dir string, port int) (*system, error) {
	srv, err := proc.StartNginx(ctx, ps, o.nginx, o.module, dir, port,
		"application live { live on; record off; }\n        application transcode { live on; record off; }")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("rtmp://127.0.0.1:%d/", port)
	return &system{name: "nginx-rtmp+ffmpeg", port: port, proc: srv.Child, logs: srv.Logs,
		inURL:  func(i int) string { return fmt.Sprintf("%slive/s%d", base, i) },
		outURL: func(i int) string { return fmt.Sprintf("%stranscode/s%d", base, i) },
	}, nil
}

// startPodium runs podium with the embedded default's transcode (audio to
// AAC 64k 44.1 kHz, video copied) on the CPU, without HLS.
func startPodium(ctx context.Context, ps *proc.Group, bin, dir string, rtmpPort, httpPort int) (*system, error) {
	srv, err := proc.StartPodium(ctx, ps, bin, dir, rtmpPort, httpPort, `hwaccel: {prefer: [none]}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {codec: aac, bitrate: 64k, sample_rate: 44100}, video: {codec: copy}}
  - name: transcode
`)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("rtmp://127.0.0.1:%d/live/", rtmpPort)
	return &system{name: "podium", port: rtmpPort, proc: srv.Child, logs: srv.Logs,
		inURL:  func(i int) string { return fmt.Sprintf("%ss%d", base, i) },
		outURL: func(i int) string { return fmt.Sprintf("%ss%d?vhost=transcode", base, i) },
	}, nil
}

type fixtureFile struct {
	path    string
	size    int64
	seconds float64
}

// fixture makes (once, cached in dir) 20 s of 720p30 H.264 2 Mbit/s (GOP 2 s)
// + Speex 16 kHz mono as FLV, so publishers send it with -c copy.
func fixture(ctx context.Context, dir string) (fixtureFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fixtureFile{}, fmt.Errorf("fixture dir: %w", err)
	}
	path := filepath.Join(dir, "transcode-720p30-2000k-speex.flv")
	if _, err := os.Stat(path); err != nil {
		slog.Info("making the fixture (once)", "path", path)
		tmp := path + ".tmp"
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
			"-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2000k", "-g", "60",
			"-pix_fmt", "yuv420p", "-c:a", "libspeex", "-ar", "16000", "-ac", "1", "-f", "flv", tmp)
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
