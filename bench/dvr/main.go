// Command dvr measures recording: N streams published to Podium (dvr, MP4)
// and to nginx-rtmp (`record all`, FLV) at once, in the same time window.
// It reports each server's CPU per recorded stream and the ratio, the bytes
// each wrote against the media it received (container overhead), and,
// after a kill -9 of both servers, how much of each class the file on disk
// is missing. See bench/README.md, section "DVR".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
)

type options struct {
	env      harness.Env
	n        int
	duration time.Duration
	warmup   time.Duration
	perfOut  string
	record   bool
}

func main() {
	var o options
	var quick bool
	o.env.Flags()
	flag.IntVar(&o.n, "n", 16, "streams recorded by each server")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "CPU measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "recording time before the CPU window starts")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium (into this file) and nginx-rtmp (FILE.nginx) during the CPU window, print podium's top symbols and where each spends its CPU (perf costs both CPU: don't quote that run's ratio)")
	flag.BoolVar(&o.record, "record", true, "false: the same run without recording on either side (the ingest's own CPU, to subtract)")
	flag.BoolVar(&quick, "quick", false, "short windows (-d 8s -warmup 3s unless given): a smoke run, not numbers to quote")
	harness.ParseFlags()
	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			o.duration = 8 * time.Second
		}
		if !set["warmup"] {
			o.warmup = 3 * time.Second
		}
	}
	harness.Main("dvr", func(ctx context.Context) error { return run(ctx, o) })
}

// side is one recorder under test.
type side struct {
	name string
	port int
	srv  *proc.Server
	dir  string // where its files go
	pubs []*proc.Peer
	sent []*progress // media time each publisher has sent

	u0, u1   proc.Usage
	maxRSS   int64
	restarts int64 // publisher restarts before the kill
}

func (s *side) url(i int) string { return fmt.Sprintf("rtmp://127.0.0.1:%d/live/s%d", s.port, i) }

// files lists stream i's recordings (an unfinished one included).
func (s *side) files(i int) []string {
	var pat string
	if s.name == "podium" {
		pat = filepath.Join(s.dir, "live", fmt.Sprintf("s%d", i), "*.mp4")
	} else {
		pat = filepath.Join(s.dir, fmt.Sprintf("s%d-*.flv", i))
	}
	m, _ := filepath.Glob(pat)
	return m
}

func run(ctx context.Context, o options) error {
	if o.n < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("need -n >= 1, -d > 0, -warmup >= 0")
	}
	r, err := o.env.Begin("podium-bench-dvr-", "ffmpeg", "ffprobe")
	if err != nil {
		return err
	}
	defer r.End()
	fix, err := fixture.Make(ctx, o.env.Fixtures, fixture.Class480p())
	if err != nil {
		return err
	}
	pod := &side{name: "podium", dir: filepath.Join(r.Dir, "podium-rec")}
	ngx := &side{name: "nginx-rtmp", dir: filepath.Join(r.Dir, "nginx-rec")}
	sides := []*side{ngx, pod}
	// nginx's worker runs as an unprivileged user when the bench runs as
	// root: it must reach and write its record_path.
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		return err
	}
	for _, s := range sides {
		if err := os.MkdirAll(s.dir, 0o777); err != nil {
			return err
		}
		if err := os.Chmod(s.dir, 0o777); err != nil {
			return err
		}
	}
	podConf := fmt.Sprintf("vhosts: [{name: __defaultVhost__, dvr: {enabled: true, path: %q, min_free: 0}}]\n",
		filepath.Join(pod.dir, "[app]", "[stream]", "[timestamp].mp4"))
	ngxConf := fmt.Sprintf("application live { live on; record all; record_path %s; record_unique on; }", ngx.dir)
	if !o.record {
		podConf, ngxConf = "vhosts: [{name: __defaultVhost__}]\n", "application live { live on; record off; }"
	}
	srv, err := r.StartServers(ctx, podConf, ngxConf)
	if err != nil {
		return err
	}
	pod.srv, pod.port, ngx.srv, ngx.port = srv.Podium, srv.PodiumPort, srv.Nginx, srv.NginxPort

	var load proc.Group
	defer load.StopAll(5 * time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for i := range o.n {
		for _, s := range sides {
			// -progress: ffmpeg says how much media it has sent, so the
			// kill -9 loss does not count a publisher's slow start.
			args := append([]string{"-progress", "pipe:1", "-stats_period", "0.2"}, fix.PublishArgs(s.url(i))...)
			p := proc.NewPeer(fmt.Sprintf("%s publisher s%d", s.name, i), args...)
			prog := &progress{}
			p.Stdout = prog.next
			s.pubs = append(s.pubs, p)
			s.sent = append(s.sent, prog)
			wg.Go(func() { p.Keep(loadCtx, &load) })
		}
	}
	slog.Info("recording", "streams_each", o.n, "warmup", o.warmup, "window", o.duration)
	if err := proc.Sleep(ctx, 1500*time.Millisecond+o.warmup); err != nil {
		return err
	}
	perf, ngxPerf, err := proc.StartPerfVsNginx(&load, o.perfOut, o.duration, pod.srv.Child.Cmd.Process.Pid, ngx.srv.Child.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	sample := func(first bool) error {
		for _, s := range sides {
			if !s.srv.Child.Alive() {
				return fmt.Errorf("%s exited (%v):\n%s", s.name, s.srv.Child.Err, s.srv.Logs)
			}
			u, err := proc.GroupUsage(s.srv.Child.Cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.maxRSS = max(s.maxRSS, u.RSS)
			if first {
				s.u0 = u
			} else {
				s.u1 = u
			}
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, func() error { return sample(true) }, func() error { return sample(false) }, nil)
	if err != nil {
		return err
	}

	perf.Print()
	proc.PrintAccounts(os.Stdout, []string{"nginx-rtmp", "podium"}, []*proc.Perf{ngxPerf, perf}, o.duration.Seconds(), o.n, "recorded stream")

	// kill -9 both recorders in the same instant, mid-class (publishers
	// that see the broken pipe are not restarts).
	for _, s := range sides {
		s.restarts = proc.Restarts(s.pubs)
	}
	for _, s := range sides {
		_ = syscall.Kill(-s.srv.Child.Cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, s := range sides {
		for _, p := range s.sent {
			p.freeze()
		}
	}
	for _, s := range sides {
		<-s.srv.Child.Done
	}
	stopLoad()
	load.StopAll(2 * time.Second)

	var failures []string
	var rows []row
	if !o.record {
		for _, s := range sides {
			cpu := float64(s.u1.Ticks-s.u0.Ticks) / float64(proc.ClockTicks()) / win.Seconds * 100
			fmt.Printf("%-11s ingest only (no recording): %.2f%% CPU, %.3f%% per stream\n", s.name, cpu, cpu/float64(o.n))
		}
		return nil
	}
	for _, s := range sides {
		rw, fails := s.measure(ctx, o, win.Seconds)
		rows = append(rows, rw)
		failures = append(failures, fails...)
	}
	print(o, fix, win, rows)
	return harness.Failed("dvr", failures)
}

// row is one recorder's figures.
type row struct {
	name        string
	cpuPct      float64
	perStream   float64
	rssMB       float64
	written     int64 // file bytes
	payload     int64 // audio+video payload bytes in the files
	loss        []float64
	files       int
	restarts    int64
	decodeClean bool
}

func (s *side) measure(ctx context.Context, o options, window float64) (row, []string) {
	clk := float64(proc.ClockTicks())
	cpu := float64(s.u1.Ticks-s.u0.Ticks) / clk / window * 100
	rw := row{name: s.name, cpuPct: cpu, perStream: cpu / float64(o.n), rssMB: float64(s.maxRSS) / (1 << 20),
		restarts: s.restarts, decodeClean: true}
	var fails []string
	for i := range o.n {
		files := s.files(i)
		if len(files) == 0 {
			fails = append(fails, fmt.Sprintf("%s: no recording of s%d", s.name, i))
			continue
		}
		var got float64
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				continue
			}
			d, payload, err := probe(ctx, f)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: %s does not play after kill -9: %v", s.name, f, err))
				continue
			}
			rw.files++
			rw.written += st.Size()
			rw.payload += payload
			got += d
		}
		rw.loss = append(rw.loss, s.sent[i].seconds()-got)
		if i == 0 {
			for _, f := range files {
				out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
				if err != nil || len(strings.TrimSpace(string(out))) > 0 {
					rw.decodeClean = false
					slog.Warn("decode errors", "file", f, "out", string(out))
				}
			}
		}
	}
	return rw, fails
}

// probe returns a file's duration and the sum of its packets' sizes.
func probe(ctx context.Context, path string) (float64, int64, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration:packet=size",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return 0, 0, errors.New("no output")
	}
	var payload int64
	var dur float64
	for i, l := range lines {
		if i == len(lines)-1 {
			dur, err = strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
			if err != nil {
				return 0, 0, fmt.Errorf("duration %q", l)
			}
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(l, ","), 10, 64)
		payload += n
	}
	return dur, payload, nil
}

func stats(v []float64) (avg, mx float64) {
	for _, x := range v {
		avg += x
		mx = max(mx, x)
	}
	if len(v) > 0 {
		avg /= float64(len(v))
	}
	return avg, mx
}

func print(o options, fix fixture.File, win harness.Window, rows []row) {
	fmt.Printf("\nDVR: %d streams of %.2f Mbit/s recorded by each server; CPU window %.1f s, machine busy %.0f%%\n\n",
		o.n, fix.Mbit(), win.Seconds, win.MachineBusyPct)
	fmt.Printf("%-11s %7s %12s %8s %10s %10s %9s %14s %6s %9s %6s\n",
		"server", "cpu%", "cpu%/stream", "rss MB", "written MB", "payload MB", "overhead", "kill-9 loss s", "files", "restarts", "clean")
	for _, r := range rows {
		avg, mx := stats(r.loss)
		over := 0.0
		if r.payload > 0 {
			over = float64(r.written-r.payload) / float64(r.payload) * 100
		}
		fmt.Printf("%-11s %7.2f %12.3f %8.1f %10.2f %10.2f %8.2f%% %6.2f / %5.2f %6d %9d %6v\n",
			r.name, r.cpuPct, r.perStream, r.rssMB, float64(r.written)/1e6, float64(r.payload)/1e6, over, avg, mx, r.files, r.restarts, r.decodeClean)
	}
	if len(rows) == 2 && rows[0].perStream > 0 {
		fmt.Printf("\nratio podium/nginx-rtmp CPU per recorded stream: %.2f (target <= 1.0)\n", rows[1].perStream/rows[0].perStream)
	}
	fmt.Println("kill-9 loss: media the publisher had sent at the kill (ffmpeg -progress) minus the media in the files, seconds (avg / max over streams)")
}

// progress reads ffmpeg's -progress output: the media time sent, summed
// over the publisher's restarts, until freeze.
type progress struct {
	mu     sync.Mutex
	done   float64 // seconds sent by earlier runs
	cur    float64 // by the current run
	frozen bool
	line   []byte
}

// next is a Peer's Stdout: a new run starts.
func (p *progress) next() io.Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += p.cur
	p.cur = 0
	p.line = p.line[:0]
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range b {
		if c != '\n' {
			p.line = append(p.line, c)
			continue
		}
		if v, ok := strings.CutPrefix(string(p.line), "out_time_us="); ok && !p.frozen {
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
				p.cur = float64(us) / 1e6
			}
		}
		p.line = p.line[:0]
	}
	return len(b), nil
}

// freeze keeps the figure as it is now (the recorders were killed).
func (p *progress) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *progress) seconds() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done + p.cur
}
