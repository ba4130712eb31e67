// Command edge measures fan-out on an edge: one stream pulled from an
// origin (nginx-rtmp, the same one for both) by a Podium edge and by an
// nginx-rtmp edge (`pull rtmp://origin/live;`), side by side in the same
// window, played by N RTMP players on each; then the time to the first
// video frame for a viewer of a cold stream on each edge. The players run
// in this process (Podium's guarded RTMP pull client, counting bytes), so
// the two servers are all that is measured. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
	"github.com/podiumlive/podium/bench/internal/scrape"
	"github.com/podiumlive/podium/rtmp"
)

// edgeFixture is 20 s of 720p30 H.264 1.5 Mbit/s + AAC 96 kbit/s.
var edgeFixture = fixture.Spec{Name: "edge-720p30-1500k-aac.flv", Size: "1280x720", FPS: 30, SampleRate: 44100,
	Video: []string{"-b:v", "1500k", "-g", "30"}, Audio: []string{"-c:a", "aac", "-b:a", "96k"}}

type options struct {
	env      harness.Env
	counts   string
	duration time.Duration
	warmup   time.Duration
	cold     int
	minShare float64
	flv      bool
	pprof    string
	// podiumOrigin: also time cold streams on a Podium edge of a Podium origin
	podiumOrigin bool
}

func main() {
	var o options
	o.env.Flags()
	flag.StringVar(&o.counts, "players", "50,200", "player counts per edge, measured in turn (players are added)")
	flag.DurationVar(&o.duration, "d", 20*time.Second, "measurement window per count")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load time before each window")
	flag.IntVar(&o.cold, "cold", 5, "cold-stream first-frame measurements per edge")
	flag.Float64Var(&o.minShare, "min-share", 0.5, "fail if a player received less than this share of the expected bytes")
	flag.BoolVar(&o.flv, "flv", true, "also measure the counts with HTTP-FLV players on Podium (nginx-rtmp has no HTTP-FLV)")
	flag.StringVar(&o.pprof, "pprof", "", "after each window, save Podium's heap and goroutine profiles (/debug/pprof) in this dir")
	flag.BoolVar(&o.podiumOrigin, "podium-origin", true, "also time the cold first frame on a Podium edge pulling from a Podium origin (GOP cache)")
	harness.ParseFlags()
	harness.Main("edge", func(ctx context.Context) error { return run(ctx, o) })
}

// edgeServer is one edge under test and its players.
type edgeServer struct {
	name    string
	port    int
	http    int // HTTP-FLV port (podium)
	proc    *proc.Server
	players []*player
}

func (s *edgeServer) url(name string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", s.port, name)
}

// player plays one stream and counts the bytes of its media messages.
type player struct {
	got  atomic.Int64
	err  atomic.Pointer[error]
	stop context.CancelFunc
}

// startFLVPlayer plays an HTTP-FLV url and counts the body's bytes.
func startFLVPlayer(ctx context.Context, wg *sync.WaitGroup, url string) *player {
	p := &player{}
	ctx, p.stop = context.WithCancel(ctx)
	wg.Go(func() {
		buf := make([]byte, 32<<10)
		for ctx.Err() == nil {
			err := func() error {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return err
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("%s", res.Status)
				}
				for {
					n, err := res.Body.Read(buf)
					p.got.Add(int64(n))
					if err != nil {
						return err
					}
				}
			}()
			if ctx.Err() != nil {
				return
			}
			p.err.Store(&err)
			_ = proc.Sleep(ctx, 500*time.Millisecond)
		}
	})
	return p
}

func startPlayer(ctx context.Context, wg *sync.WaitGroup, url string) *player {
	p := &player{}
	ctx, p.stop = context.WithCancel(ctx)
	wg.Go(func() {
		for ctx.Err() == nil {
			pl, err := rtmp.DialPull(ctx, url, rtmp.PullOptions{ConnectTimeout: 10 * time.Second})
			if err == nil {
				err = pl.Run(ctx, 10*time.Second, func(m rtmp.Message) error {
					p.got.Add(int64(len(m.Payload)))
					return nil
				})
				pl.Close()
			}
			if ctx.Err() != nil {
				return
			}
			p.err.Store(&err)
			_ = proc.Sleep(ctx, 500*time.Millisecond)
		}
	})
	return p
}

type row struct {
	Server          string  `json:"server"`
	Players         int     `json:"players"`
	CPUPct          float64 `json:"cpu_pct"`
	CPUPctPerViewer float64 `json:"cpu_pct_per_viewer"`
	RSSMB           float64 `json:"rss_mb"`
	RSSKBPerViewer  float64 `json:"rss_kb_per_viewer"`
	MbitOut         float64 `json:"mbit_s_out"`
	PlayerMBMin     float64 `json:"player_mb_min"`
}

type result struct {
	Bench          string             `json:"bench"`
	WindowS        float64            `json:"window_s"`
	FixtureMbit    float64            `json:"fixture_mbit_s"`
	Rows           []row              `json:"rows"`
	Ratios         map[string]float64 `json:"ratio_podium_nginx_cpu_per_viewer"`
	FirstFrameMs   map[string]float64 `json:"first_frame_ms_median"`
	FirstFrameMaxs map[string]float64 `json:"first_frame_ms_max"`
	Target         float64            `json:"target_ratio_max"`
	OK             bool               `json:"ok"`
}

func run(ctx context.Context, o options) error {
	var counts []int
	for _, f := range strings.Split(o.counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-players %q: want counts like 50,200", o.counts)
		}
		counts = append(counts, n)
	}
	if !slices.IsSorted(counts) || o.duration <= 0 {
		return errors.New("need increasing -players and -d > 0")
	}
	r, err := o.env.Begin("podium-bench-edge-", "ffmpeg")
	if err != nil {
		return err
	}
	defer r.End()
	fix, err := fixture.Make(ctx, o.env.Fixtures, edgeFixture)
	if err != nil {
		return err
	}
	ports, err := proc.FreePorts(1)
	if err != nil {
		return err
	}
	origin, err := proc.StartNginx(ctx, &r.Group, o.env.Nginx, o.env.Module, filepath.Join(r.Dir, "origin"), ports[0],
		"application live { live on; }")
	if err != nil {
		return err
	}
	_ = origin
	originURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live", ports[0])
	srv, err := r.StartServers(ctx, fmt.Sprintf(`auth: {admin_password: `+adminPassword+`}
vhosts:
  - name: __defaultVhost__
    cluster: {mode: remote, origin: ["127.0.0.1:%d"]}
`, ports[0]), fmt.Sprintf("application live { live on; pull %s; }", originURL))
	if err != nil {
		return err
	}
	ngx := &edgeServer{name: "nginx-rtmp", port: srv.NginxPort, proc: srv.Nginx}
	pod := &edgeServer{name: "podium", port: srv.PodiumPort, http: srv.PodiumHTTPPort, proc: srv.Podium}
	edges := []*edgeServer{ngx, pod}

	var wg, players sync.WaitGroup
	defer wg.Wait()
	defer players.Wait()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	playCtx, stopPlayers := context.WithCancel(loadCtx)
	defer stopPlayers()
	streams := append([]string{"class"}, coldNames(o.cold)...)
	for _, name := range streams {
		p := proc.NewPeer("publisher "+name, fix.PublishArgs(originURL+"/"+name)...)
		wg.Go(func() { p.Keep(loadCtx, &r.Group) })
	}
	if err := proc.Sleep(ctx, 3*time.Second); err != nil {
		return err
	}

	// One viewer each makes the pulls; their RSS is the baseline.
	base := map[string]int64{}
	for _, s := range edges {
		s.players = append(s.players, startPlayer(playCtx, &players, s.url("class")))
	}
	if err := proc.Sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	for _, s := range edges {
		u, err := proc.GroupUsage(s.proc.Child.Cmd.Process.Pid)
		if err != nil {
			return err
		}
		base[s.name] = u.RSS
	}

	res := result{Bench: "edge", WindowS: o.duration.Seconds(), FixtureMbit: fix.Mbit(), Target: 1.0,
		Ratios: map[string]float64{}, FirstFrameMs: map[string]float64{}, FirstFrameMaxs: map[string]float64{}}
	var failures []string
	for _, n := range counts {
		for len(pod.players) < n {
			for _, s := range edges {
				s.players = append(s.players, startPlayer(playCtx, &players, s.url("class")))
			}
		}
		slog.Info("players running", "each", n, "warmup", o.warmup)
		if err := proc.Sleep(ctx, o.warmup); err != nil {
			return err
		}
		rows, f, err := measure(ctx, o, edges, base, fix)
		if err != nil {
			return err
		}
		if err := scrape.New(pod.http, adminPassword).SaveProfiles(o.pprof, fmt.Sprintf("rtmp-%d", n)); err != nil {
			return err
		}
		failures = append(failures, f...)
		res.Rows = append(res.Rows, rows...)
		if rows[0].CPUPctPerViewer > 0 {
			res.Ratios[strconv.Itoa(n)] = rows[1].CPUPctPerViewer / rows[0].CPUPctPerViewer
		}
	}
	stopPlayers()
	players.Wait()

	// The same counts with HTTP-FLV players on Podium (one RTMP player
	// keeps the pull while they are added).
	if o.flv {
		keep := startPlayer(loadCtx, &players, pod.url("class"))
		flv := &edgeServer{name: "podium http-flv", proc: pod.proc, players: []*player{keep}}
		url := fmt.Sprintf("http://127.0.0.1:%d/live/class.flv", pod.http)
		for _, n := range counts {
			for len(flv.players) < n {
				flv.players = append(flv.players, startFLVPlayer(loadCtx, &players, url))
			}
			slog.Info("http-flv players running", "players", n, "warmup", o.warmup)
			if err := proc.Sleep(ctx, o.warmup); err != nil {
				return err
			}
			rows, f, err := measure(ctx, o, []*edgeServer{flv}, map[string]int64{flv.name: base["podium"]}, fix)
			if err != nil {
				return err
			}
			if err := scrape.New(pod.http, adminPassword).SaveProfiles(o.pprof, fmt.Sprintf("flv-%d", n)); err != nil {
				return err
			}
			failures = append(failures, f...)
			res.Rows = append(res.Rows, rows...)
		}
		for _, p := range flv.players {
			p.stop()
		}
		players.Wait()
	}
	stopLoad()
	wg.Wait()

	// Cold streams: time from the play to the first video frame, on each
	// edge and, for comparison, straight from the nginx-rtmp origin (which
	// has no GOP cache: a new player waits for the next keyframe).
	cold := coldNames(o.cold)
	coldURLs := func(base string) []string {
		out := make([]string, len(cold))
		for i, name := range cold {
			out[i] = base + "/" + name
		}
		return out
	}
	for _, s := range edges {
		failures = append(failures, firstFrames(ctx, &res, s.name, coldURLs(fmt.Sprintf("rtmp://127.0.0.1:%d/live", s.port)))...)
	}
	failures = append(failures, firstFrames(ctx, &res, "nginx-rtmp origin (direct)", coldURLs(originURL))...)
	if o.podiumOrigin {
		f, err := coldBehindPodium(ctx, r, o, fix, cold, &res)
		if err != nil {
			return err
		}
		failures = append(failures, f...)
	}
	report(&res)
	res.OK = len(failures) == 0
	b, _ := json.Marshal(res)
	fmt.Printf("%s\n", b)
	return harness.Failed("edge", failures)
}

// adminPassword is the Podium edge's admin login (for -pprof).
const adminPassword = "bench-edge-admin"

// firstFrames plays each url once (streams the server has not pulled
// yet) and records the median and max time to the first video frame
// under name.
func firstFrames(ctx context.Context, res *result, name string, urls []string) []string {
	var ms []float64
	var failures []string
	for _, u := range urls {
		d, err := firstFrame(ctx, u)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: cold %s: %v", name, u, err))
			continue
		}
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	if len(ms) > 0 {
		slices.Sort(ms)
		res.FirstFrameMs[name] = ms[len(ms)/2]
		res.FirstFrameMaxs[name] = ms[len(ms)-1]
	}
	return failures
}

// coldBehindPodium measures the cold first frame in the product's own
// setup: a Podium edge pulling from a Podium origin (which keeps a GOP
// cache), with the cold streams published to that origin.
func coldBehindPodium(ctx context.Context, r *harness.Run, o options, fix fixture.File, cold []string, res *result) ([]string, error) {
	ports, err := proc.FreePorts(4)
	if err != nil {
		return nil, err
	}
	if _, err := proc.StartPodium(ctx, &r.Group, o.env.Podium, filepath.Join(r.Dir, "podium-origin"), ports[0], ports[1], ""); err != nil {
		return nil, err
	}
	if _, err := proc.StartPodium(ctx, &r.Group, o.env.Podium, filepath.Join(r.Dir, "podium-edge2"), ports[2], ports[3],
		fmt.Sprintf("vhosts:\n  - name: __defaultVhost__\n    cluster: {mode: remote, origin: [\"127.0.0.1:%d\"]}\n", ports[0])); err != nil {
		return nil, err
	}
	origin := fmt.Sprintf("rtmp://127.0.0.1:%d/live", ports[0])
	pubCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after stop (defers run last first)
	defer stop()
	for _, name := range cold {
		p := proc.NewPeer("publisher podium "+name, fix.PublishArgs(origin+"/"+name)...)
		wg.Go(func() { p.Keep(pubCtx, &r.Group) })
	}
	if err := proc.Sleep(ctx, 3*time.Second); err != nil {
		return nil, err
	}
	var urls, direct []string
	for _, name := range cold {
		urls = append(urls, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", ports[2], name))
		direct = append(direct, origin+"/"+name)
	}
	f := firstFrames(ctx, res, "podium edge of a podium origin", urls)
	f = append(f, firstFrames(ctx, res, "podium origin (direct)", direct)...)
	return f, nil
}

func coldNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cold%d", i)
	}
	return out
}

// measure runs one window over both edges.
func measure(ctx context.Context, o options, edges []*edgeServer, base map[string]int64, fix fixture.File) ([]row, []string, error) {
	u0 := map[string]proc.Usage{}
	rss := map[string]int64{}
	b0 := map[string][]int64{}
	var u1 map[string]proc.Usage
	b1 := map[string][]int64{}
	usage := func(s *edgeServer) (proc.Usage, error) {
		u, err := proc.GroupUsage(s.proc.Child.Cmd.Process.Pid)
		if err != nil {
			return u, fmt.Errorf("%s: %w", s.name, err)
		}
		rss[s.name] = max(rss[s.name], u.RSS)
		return u, nil
	}
	first := func() error {
		for _, s := range edges {
			u, err := usage(s)
			if err != nil {
				return err
			}
			u0[s.name], b0[s.name] = u, counts(s.players)
		}
		return nil
	}
	sample := func() error {
		for _, s := range edges {
			if !s.proc.Child.Alive() {
				return fmt.Errorf("%s exited:\n%s", s.name, s.proc.Logs)
			}
			if _, err := usage(s); err != nil {
				return err
			}
		}
		return nil
	}
	last := func() error {
		u1 = map[string]proc.Usage{}
		for _, s := range edges {
			u, err := usage(s)
			if err != nil {
				return err
			}
			u1[s.name], b1[s.name] = u, counts(s.players)
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, first, sample, last)
	if err != nil {
		return nil, nil, err
	}
	clk := float64(proc.ClockTicks())
	expected := fix.Rate() * win.Seconds
	var rows []row
	var failures []string
	for _, s := range edges {
		n := len(s.players)
		cpu := float64(u1[s.name].Ticks-u0[s.name].Ticks) / clk / win.Seconds * 100
		var sum int64
		minGot := int64(-1)
		for i := range s.players {
			d := b1[s.name][i] - b0[s.name][i]
			sum += d
			if minGot < 0 || d < minGot {
				minGot = d
			}
			if float64(d) < o.minShare*expected {
				msg := fmt.Sprintf("%s: player %d got %d bytes, expected about %.0f", s.name, i, d, expected)
				if e := s.players[i].err.Load(); e != nil {
					msg += fmt.Sprintf(" (last error: %v)", *e)
				}
				failures = append(failures, msg)
			}
		}
		rows = append(rows, row{Server: s.name, Players: n, CPUPct: cpu, CPUPctPerViewer: cpu / float64(n),
			RSSMB: float64(rss[s.name]) / (1 << 20), RSSKBPerViewer: float64(rss[s.name]-base[s.name]) / 1024 / float64(n-1),
			MbitOut: float64(sum) * 8 / win.Seconds / 1e6, PlayerMBMin: float64(minGot) / 1e6})
	}
	slog.Info("window done", "players", len(edges[0].players), "machine_busy_pct", win.MachineBusyPct)
	return rows, failures, nil
}

func counts(ps []*player) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.got.Load()
	}
	return out
}

// firstFrame plays url (a stream the edge does not have yet) and returns
// the time from the dial to the first video frame.
func firstFrame(ctx context.Context, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start := time.Now()
	pl, err := rtmp.DialPull(ctx, url, rtmp.PullOptions{ConnectTimeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	defer pl.Close()
	var took time.Duration
	errFrame := errors.New("frame")
	err = pl.Run(ctx, 10*time.Second, func(m rtmp.Message) error {
		// A video frame, not the sequence header (AVC packet type 0).
		if m.Type == rtmp.TypeVideo && len(m.Payload) > 1 && m.Payload[1] == 1 {
			took = time.Since(start)
			return errFrame
		}
		return nil
	})
	if !errors.Is(err, errFrame) {
		return 0, err
	}
	return took, nil
}

func report(res *result) {
	w := os.Stdout
	fmt.Fprintf(w, "\nedge: one stream (%.2f Mbit/s) pulled from one origin, %.0f s windows\n\n", res.FixtureMbit, res.WindowS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tplayers\tCPU % (1 core)\tCPU %/viewer\tRSS MB\tRSS KB/viewer\tMbit/s out\tmin MB/player\t")
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.4f\t%.1f\t%.1f\t%.1f\t%.2f\t\n", r.Server, r.Players, r.CPUPct, r.CPUPctPerViewer,
			r.RSSMB, r.RSSKBPerViewer, r.MbitOut, r.PlayerMBMin)
	}
	_ = tw.Flush()
	keys := make([]string, 0, len(res.Ratios))
	for k := range res.Ratios {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	for _, k := range keys {
		fmt.Fprintf(w, "ratio podium/nginx-rtmp CPU per viewer at %s players: %.2f (target <= %.1f)\n", k, res.Ratios[k], res.Target)
	}
	for _, s := range []string{"nginx-rtmp", "podium", "nginx-rtmp origin (direct)", "podium edge of a podium origin", "podium origin (direct)"} {
		if _, ok := res.FirstFrameMs[s]; !ok {
			continue
		}
		fmt.Fprintf(w, "%s: first video frame of a cold stream: median %.0f ms, max %.0f ms (target <= 1000 ms for podium)\n",
			s, res.FirstFrameMs[s], res.FirstFrameMaxs[s])
	}
}
