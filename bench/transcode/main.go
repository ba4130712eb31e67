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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/latency"
	"github.com/podiumlive/podium/bench/internal/proc"
)

// transcodeFixture is 20 s of 720p30 H.264 2 Mbit/s (GOP 2 s) + Speex
// 16 kHz mono.
var transcodeFixture = fixture.Spec{Name: "transcode-720p30-2000k-speex.flv", Size: "1280x720", FPS: 30, SampleRate: 16000,
	Video: []string{"-b:v", "2000k", "-g", "60"}, Audio: []string{"-c:a", "libspeex", "-ar", "16000", "-ac", "1"}}

type options struct {
	env      harness.Env
	k        int
	duration time.Duration
	warmup   time.Duration
	perfOut  string
	minShare float64
}

func main() {
	var o options
	o.env.Flags()
	flag.IntVar(&o.k, "k", 8, "streams per system")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before the window starts (after every peer is started)")
	flag.StringVar(&o.perfOut, "perf", "", "if set and perf(1) exists: record podium with perf during the window into this file and print its top symbols (perf costs podium a little CPU: don't quote that run's ratio)")
	flag.Float64Var(&o.minShare, "min-share", 0.5, "fail if a player received less than this share of the expected bytes")
	harness.ParseFlags()
	latency.SilenceLal()
	harness.Main("transcode", func(ctx context.Context) error { return run(ctx, o) })
}

// player is an ffmpeg player of a normalized twin, its FLV stdout watched.
type player struct {
	*proc.Peer
	watch *flvWatch
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
	pubs        []*proc.Peer
	transcoders []*proc.Peer
	players     []*player
	probes      []*latency.Probe

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
	r.serverAnon = proc.RssAnon(s.proc.Cmd.Process.Pid)
	r.pss = proc.GroupPss(s.proc.Cmd.Process.Pid)
	for _, t := range s.transcoders {
		c := t.Running()
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
		r.pss += proc.GroupPss(c.Cmd.Process.Pid)
		r.transPIDs = append(r.transPIDs, c.Cmd.Process.Pid)
	}
	return r, nil
}

func run(ctx context.Context, o options) error {
	if o.k < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("need -k >= 1, -d > 0, -warmup >= 0")
	}
	r, err := o.env.Begin("podium-bench-transcode-", "ffmpeg", "ffprobe")
	if err != nil {
		return err
	}
	defer r.End()
	fix, err := fixture.Make(ctx, o.env.Fixtures, transcodeFixture)
	if err != nil {
		return err
	}
	// Podium with the embedded default's transcode (audio to AAC 64k
	// 44.1 kHz, video copied) on the CPU, without HLS; nginx-rtmp with two
	// applications, live (the encoders') and transcode (the transcoders'
	// output).
	srv, err := r.StartServers(ctx, `hwaccel: {prefer: [none]}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {codec: aac, bitrate: 64k, sample_rate: 44100}, video: {codec: copy}}
  - name: transcode
`, "application live { live on; record off; }\n        application transcode { live on; record off; }")
	if err != nil {
		return err
	}
	podBase := fmt.Sprintf("rtmp://127.0.0.1:%d/live/", srv.PodiumPort)
	pod := &system{name: "podium", port: srv.PodiumPort, proc: srv.Podium.Child, logs: srv.Podium.Logs,
		inURL:  func(i int) string { return fmt.Sprintf("%ss%d", podBase, i) },
		outURL: func(i int) string { return fmt.Sprintf("%ss%d?vhost=transcode", podBase, i) },
	}
	ngxBase := fmt.Sprintf("rtmp://127.0.0.1:%d/", srv.NginxPort)
	ngx := &system{name: "nginx-rtmp+ffmpeg", port: srv.NginxPort, proc: srv.Nginx.Child, logs: srv.Nginx.Logs,
		inURL:  func(i int) string { return fmt.Sprintf("%slive/s%d", ngxBase, i) },
		outURL: func(i int) string { return fmt.Sprintf("%stranscode/s%d", ngxBase, i) },
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
	spawn := func(p *proc.Peer) { wg.Go(func() { p.Keep(loadCtx, &r.Group) }) }

	// Publishers, the two systems interleaved.
	for i := range o.k {
		for _, s := range systems {
			p := proc.NewPeer(fmt.Sprintf("%s publisher s%d", s.name, i), fix.PublishArgs(s.inURL(i))...)
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
		p := proc.NewPeer(fmt.Sprintf("%s transcoder s%d", ngx.name, i),
			"-hide_banner", "-v", "error", "-nostdin", "-i", ngx.inURL(i),
			"-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "1", "-f", "flv", ngx.outURL(i))
		ngx.transcoders = append(ngx.transcoders, p)
		spawn(p)
	}
	if err := proc.Sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	// Players of the normalized twins, and the latency probes.
	for i := range o.k {
		for _, s := range systems {
			p := &player{Peer: proc.NewPeer(fmt.Sprintf("%s player s%d", s.name, i),
				"-hide_banner", "-v", "error", "-nostdin", "-rw_timeout", "15000000",
				"-i", s.outURL(i), "-c", "copy", "-f", "flv", "pipe:1"), watch: newFLVWatch()}
			p.Stdout = func() io.Writer {
				p.watch.reset() // the previous process's stdout is fully copied once it was waited for
				return p.watch
			}
			s.players = append(s.players, p)
			spawn(p.Peer)
			pr := latency.NewProbe(fmt.Sprintf("%s probe s%d", s.name, i), s.inURL(i), s.outURL(i))
			pr.Audio = true
			s.probes = append(s.probes, pr)
			wg.Go(func() { pr.Run(loadCtx) })
		}
	}
	slog.Info("load running", "streams_each", o.k, "warmup", o.warmup, "window", o.duration)
	if err := proc.Sleep(ctx, o.warmup); err != nil {
		return err
	}

	perf, err := proc.StartPerf(&r.Group, o.perfOut, o.duration, pod.proc.Cmd.Process.Pid)
	if err != nil {
		return err
	}

	// The window: snapshot, sample memory and liveness every second, snapshot.
	first := func() (err error) {
		for _, s := range systems {
			if s.s0, err = s.sample(); err != nil {
				return err
			}
			s.watch0 = watchCounts(s.players)
			s.restarts0 = proc.Restarts(s.transcoders)
			for _, pr := range s.probes {
				pr.SetActive(true)
			}
		}
		return nil
	}
	each := func() error {
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
		return nil
	}
	last := func() (err error) {
		for _, s := range systems {
			for _, pr := range s.probes {
				pr.SetActive(false)
			}
			if s.s1, err = s.sample(); err != nil {
				return err
			}
			s.watch1 = watchCounts(s.players)
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, first, each, last)
	if err != nil {
		return err
	}
	stopLoad()

	res := report(os.Stdout, o, pod, ngx, fix, win.Seconds, proc.ClockTicks(), win.MachineBusyPct)
	perf.Print()
	return harness.Failed("transcode", res.failures)
}

func watchCounts(ps []*player) []flvCounts {
	out := make([]flvCounts, len(ps))
	for i, p := range ps {
		out[i] = p.watch.counts()
	}
	return out
}
