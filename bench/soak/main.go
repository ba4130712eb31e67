// Command soak runs a small campus for -d (default 1 h) and reports what
// changes over time: 16 H.264+Speex streams published to a master that
// transcodes them (audio to AAC) and forwards them to two slaves that cut
// HLS, 32 players (an RTMP player per stream on slave A, an HLS player per
// stream on slave B), and one more publisher that leaves and comes back
// every -churn. Every -sample it records each box's RSS and the master's
// goroutines, open files, dropped packets, transcode errors and forward
// reconnects (from /metrics), and the players' errors. At the end: the
// RSS slope after the warm-up (MB/h and % of the mean per hour) and the
// totals. See docs/reliability.md for the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
	"github.com/podiumlive/podium/bench/internal/scrape"
	"github.com/podiumlive/podium/internal/loadgen"
)

const password = "soak-bench"

type options struct {
	bin, fixtures, pprof    string
	d, warmup, churn, every time.Duration
	streams                 int
	maxSlope                float64
	keep                    bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "podium", "bin/podium", "podium binary (go build -o bin/podium ./cmd/podium)")
	flag.StringVar(&o.fixtures, "fixtures", filepath.Join(os.TempDir(), "podium-bench-fixtures"), "fixture cache")
	flag.DurationVar(&o.d, "d", time.Hour, "how long to run")
	flag.DurationVar(&o.warmup, "warmup", 0, "left out of the RSS slope (default: a third of -d, at most 30 min: the boxes take memory from the kernel for their first half hour)")
	flag.DurationVar(&o.churn, "churn", time.Minute, "the churning publisher leaves and comes back this often")
	flag.DurationVar(&o.every, "sample", 10*time.Second, "sampling interval")
	flag.IntVar(&o.streams, "n", 16, "streams (publishers; an RTMP and an HLS player each)")
	flag.Float64Var(&o.maxSlope, "max-slope", 0, "fail if the master's RSS grows faster than this percent per hour after the warm-up (0: report only)")
	flag.StringVar(&o.pprof, "pprof", "", "save each box's heap and goroutine profiles (/debug/pprof) in this dir at the warm-up's end and at the end")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, HLS)")
	harness.ParseFlags()
	loadgen.Silence()
	if o.warmup == 0 {
		o.warmup = min(o.d/3, 30*time.Minute)
	}
	harness.Main("soak", func(ctx context.Context) error { return run(ctx, o) })
}

type box struct {
	name       string
	srv        *proc.Server
	rtmp, http int
	m          *scrape.Client
}

func (b *box) url(path string) string { return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", b.rtmp, path) }

func startBox(ctx context.Context, g *proc.Group, o options, dir, name, body string) (*box, error) {
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	srv, err := proc.StartPodium(ctx, g, o.bin, filepath.Join(dir, name), ports[0], ports[1],
		fmt.Sprintf("auth: {admin_password: %s}\n%s", password, body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &box{name: name, srv: srv, rtmp: ports[0], http: ports[1], m: scrape.New(ports[1], password)}, nil
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "podium-soak-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	var g proc.Group
	defer g.StopAll(5 * time.Second)
	file, err := fixture.Ensure(ctx, o.fixtures, fixture.Speex)
	if err != nil {
		return err
	}
	tags, err := loadgen.ReadFLV(file)
	if err != nil {
		return err
	}
	slave := "vhosts:\n  - name: __defaultVhost__\n    hls: {enabled: true, fragment: 2s, window: 6}\n"
	a, err := startBox(ctx, &g, o, dir, "slave-a", slave)
	if err != nil {
		return err
	}
	b, err := startBox(ctx, &g, o, dir, "slave-b", slave)
	if err != nil {
		return err
	}
	master, err := startBox(ctx, &g, o, dir, "master", fmt.Sprintf(`vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {codec: aac, bitrate: 64k, sample_rate: 44100, channels: 1}, video: {codec: copy}}
  - name: transcode
    forward: {destinations: ["127.0.0.1:%d", "127.0.0.1:%d"]}
`, a.rtmp, b.rtmp))
	if err != nil {
		return err
	}

	load, stop := context.WithCancel(ctx)
	defer stop()
	var pubs []*proc.Peer
	var rtmpPlayers []*loadgen.Player
	var hlsPlayers []*hlsPlayer
	for i := range o.streams {
		p := proc.NewPeer(fmt.Sprintf("pub%d", i), "-hide_banner", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1",
			"-i", file, "-c", "copy", "-f", "flv", master.url(fmt.Sprintf("live/s%d", i)))
		pubs = append(pubs, p)
		go p.Keep(load, &g)
	}
	churner := &churner{}
	go churner.run(load, master.url("live/churn"), tags, o.churn)
	if err := proc.Sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	for i := range o.streams {
		p := &loadgen.Player{}
		rtmpPlayers = append(rtmpPlayers, p)
		go p.Run(load, a.url(fmt.Sprintf("live/s%d", i)))
		h := &hlsPlayer{}
		hlsPlayers = append(hlsPlayers, h)
		go h.run(load, fmt.Sprintf("http://127.0.0.1:%d/live/s%d.m3u8", b.http, i))
	}

	r := newReport(o, []*box{master, a, b})
	fmt.Printf("soak: %d H.264+Speex streams -> master (transcode, AAC) -> forward to 2 slaves (HLS); %d RTMP + %d HLS players; a publisher churning every %v; %v, warm-up %v\n",
		o.streams, len(rtmpPlayers), len(hlsPlayers), o.churn, o.d, o.warmup)
	start := time.Now()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	warm := false
	for {
		s, err := r.sample(time.Since(start), pubs, rtmpPlayers, hlsPlayers, churner)
		if err != nil {
			return err
		}
		r.print(s)
		if !warm && s.at >= o.warmup {
			warm = true
			if err := r.profiles("warm"); err != nil {
				return err
			}
		}
		if time.Since(start) >= o.d {
			if err := r.profiles("end"); err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	stop()
	return r.summary()
}
