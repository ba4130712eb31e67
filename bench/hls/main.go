// Command hls measures HLS segmenting: N H.264 + AAC streams cut into
// MPEG-TS HLS by Podium and, in the same run, by nginx-rtmp (`hls on`).
// It reports each server's CPU per stream and their ratio, and how long
// after the frame that ends a segment arrives the segment is listed in the
// playlist. See bench/README.md, section "HLS".
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	lalbase "github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/latency"
	"github.com/podiumlive/podium/bench/internal/proc"
)

// hlsFixture is 20 s of 1280x720 25 fps H.264 (2 Mbit/s, a keyframe every
// second) + AAC 128 kbit/s stereo.
var hlsFixture = fixture.Spec{Name: "hls-720p-h264-aac.flv", Size: "1280x720", FPS: 25, SampleRate: 44100,
	Video: []string{"-b:v", "2000k", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"},
	Audio: []string{"-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2"}}

type options struct {
	env              harness.Env
	n                int
	duration, warmup time.Duration
	fragment         time.Duration
}

func main() {
	var o options
	o.env.Flags()
	flag.IntVar(&o.n, "n", 16, "streams per server")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 6*time.Second, "load time before the window")
	flag.DurationVar(&o.fragment, "fragment", 2*time.Second, "HLS fragment (both servers)")
	harness.ParseFlags()
	latency.SilenceLal()
	harness.Main("hls", func(ctx context.Context) error { return run(ctx, o) })
}

// server is one system under test.
type server struct {
	name     string
	child    *proc.Child
	rtmpPort int
	hlsDir   string // where its playlists appear
	playlist func(i int) string
	watch    *listings
	u0, u1   proc.Usage
}

func (s *server) pushURL(i int) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/s%d", s.rtmpPort, i)
}

func run(ctx context.Context, o options) error {
	r, err := o.env.Begin("podium-bench-hls-", "ffmpeg")
	if err != nil {
		return err
	}
	defer r.End()
	fix, err := fixture.Ensure(ctx, o.env.Fixtures, hlsFixture)
	if err != nil {
		return err
	}
	tags, dur, err := readFLV(fix)
	if err != nil {
		return err
	}
	window := 6
	frag := fmt.Sprintf("%gs", o.fragment.Seconds())
	podHLS := filepath.Join(r.Dir, "podium", "hls")
	ngxDir := filepath.Join(r.Dir, "nginx")
	ngxHLS := filepath.Join(ngxDir, "hls")
	srv, err := r.StartServers(ctx,
		fmt.Sprintf("vhosts:\n  - name: __defaultVhost__\n    hls: {enabled: true, fragment: %s, window: %d, path: %s, variant: mpegts, dispose: 0s}\n",
			frag, window, podHLS),
		fmt.Sprintf("application live { live on; hls on; hls_path %s; hls_fragment %s; hls_playlist_length %ds; hls_cleanup on; }",
			ngxHLS, frag, window*int(o.fragment.Seconds())))
	if err != nil {
		return err
	}
	playlist := func(i int) string { return fmt.Sprintf("s%d.m3u8", i) }
	pod := &server{name: "podium", child: srv.Podium.Child, rtmpPort: srv.PodiumPort, hlsDir: filepath.Join(podHLS, "live"),
		playlist: playlist}
	ngx := &server{name: "nginx-rtmp", child: srv.Nginx.Child, rtmpPort: srv.NginxPort, hlsDir: ngxHLS, playlist: playlist}
	servers := []*server{pod, ngx}

	// nginx's worker runs as an unprivileged user when the bench runs as
	// root: let it reach and write its HLS directory.
	for _, d := range []string{r.Dir, ngxDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	for _, s := range servers {
		if err := os.MkdirAll(s.hlsDir, 0o777); err != nil {
			return err
		}
		if err := os.Chmod(s.hlsDir, 0o777); err != nil {
			return err
		}
		s.watch, err = watchListings(s.hlsDir)
		if err != nil {
			return err
		}
		defer s.watch.close()
	}
	// Publishers: interleaved, both servers get the same load.
	pubCtx, pubStop := context.WithCancel(ctx)
	defer pubStop()
	var wg sync.WaitGroup
	pubErr := make(chan error, 2*o.n)
	for i := range o.n {
		for _, s := range servers {
			p := &publisher{url: s.pushURL(i), tags: tags, loop: dur, keys: s.watch.keysFor(s.playlist(i))}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.run(pubCtx); err != nil && pubCtx.Err() == nil {
					pubErr <- fmt.Errorf("%s: %w", p.url, err)
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer wg.Wait()
	defer pubStop()
	if err := proc.Sleep(ctx, o.warmup); err != nil {
		return err
	}
	first := func() (err error) {
		for _, s := range servers {
			if s.u0, err = proc.GroupUsage(s.child.Cmd.Process.Pid); err != nil {
				return err
			}
			s.watch.reset()
		}
		return nil
	}
	publishing := func() error {
		select {
		case err := <-pubErr:
			return err
		default:
			return nil
		}
	}
	last := func() (err error) {
		for _, s := range servers {
			if s.u1, err = proc.GroupUsage(s.child.Cmd.Process.Pid); err != nil {
				return fmt.Errorf("%s died: %w", s.name, err)
			}
		}
		return nil
	}
	win, err := harness.Measure(ctx, o.duration, first, publishing, last)
	if err != nil {
		return err
	}
	el := win.Seconds
	tick := float64(proc.ClockTicks())
	fmt.Printf("\nHLS: %d streams per server, fixture %s, fragment %s, window %s (machine %.0f%% busy)\n\n",
		o.n, filepath.Base(fix), o.fragment, time.Duration(o.duration), win.MachineBusyPct)
	fmt.Printf("%-11s %8s %10s %9s %8s %12s %12s %12s %8s\n", "server", "CPU %", "CPU %/str", "RSS MB", "segs", "list p50 ms", "list p95 ms", "list max ms", "late")
	type row struct {
		Server     string  `json:"server"`
		CPU        float64 `json:"cpu_pct"`
		PerStream  float64 `json:"cpu_pct_per_stream"`
		RSSMB      float64 `json:"rss_mb"`
		Segments   int     `json:"segments"`
		P50, P95   float64 `json:"-"`
		Max        float64 `json:"-"`
		ListP50ms  float64 `json:"list_p50_ms"`
		ListP95ms  float64 `json:"list_p95_ms"`
		ListMaxms  float64 `json:"list_max_ms"`
		Late       int     `json:"late"`
		MinPerStrm int     `json:"min_segments_per_stream"`
	}
	var rows []row
	for _, s := range servers {
		cpu := 100 * float64(s.u1.Ticks-s.u0.Ticks) / tick / el
		lat, late, perStream := s.watch.results(o.n, s.playlist)
		r := row{Server: s.name, CPU: cpu, PerStream: cpu / float64(o.n), RSSMB: float64(s.u1.RSS) / (1 << 20),
			Segments: len(lat), Late: late, MinPerStrm: perStream}
		r.ListP50ms, r.ListP95ms, r.ListMaxms = pct(lat, 50), pct(lat, 95), pct(lat, 100)
		rows = append(rows, r)
		fmt.Printf("%-11s %8.2f %10.3f %9.1f %8d %12.1f %12.1f %12.1f %8d\n", r.Server, r.CPU, r.PerStream, r.RSSMB, r.Segments, r.ListP50ms, r.ListP95ms, r.ListMaxms, late)
	}
	ratio := rows[0].PerStream / rows[1].PerStream
	fmt.Printf("\nCPU per stream podium/nginx-rtmp: %.2f (target <= 1.00: %s)\n", ratio, met(ratio <= 1))
	fmt.Printf("listing latency p95 podium: %.1f ms (target <= 50 ms: %s)\n", rows[0].ListP95ms, met(rows[0].ListP95ms <= 50))
	j, _ := json.Marshal(map[string]any{"bench": "hls", "streams": o.n, "fragment_s": o.fragment.Seconds(), "window_s": el, "servers": rows, "cpu_ratio": ratio})
	fmt.Println(string(j))
	// Validity: every stream of every server listed segments in the window.
	want := int(el/o.fragment.Seconds()) - 2
	for _, r := range rows {
		if r.MinPerStrm < want {
			return fmt.Errorf("%s: a stream listed only %d segments in the window (want >= %d): the run is not valid", r.Server, r.MinPerStrm, want)
		}
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// tag is one FLV tag: an RTMP message.
type tag struct {
	typ       uint8
	ts        uint32
	key       bool // video keyframe
	seqHeader bool // AVC or AAC sequence header
	body      []byte
}

func readFLV(path string) ([]tag, uint32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, 0, errors.New("not an FLV file")
	}
	pos := int(binary.BigEndian.Uint32(b[5:9])) + 4
	var tags []tag
	var last uint32
	for pos+11 <= len(b) {
		typ := b[pos] & 0x1f
		size := int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		ts := uint32(b[pos+4])<<16 | uint32(b[pos+5])<<8 | uint32(b[pos+6]) | uint32(b[pos+7])<<24
		if pos+11+size > len(b) {
			break
		}
		body := b[pos+11 : pos+11+size]
		pos += 11 + size + 4
		if typ != 8 && typ != 9 {
			continue
		}
		// A keyframe NALU packet (not the sequence header).
		key := typ == 9 && len(body) > 1 && body[0]>>4 == 1 && body[1] == 1
		seq := len(body) > 1 && body[1] == 0 && (typ == 9 && body[0]&0x0f == 7 || typ == 8 && body[0]>>4 == 10)
		tags = append(tags, tag{typ: typ, ts: ts, key: key, seqHeader: seq, body: body})
		last = max(last, ts)
	}
	return tags, last + 40, nil
}

// publisher pushes the fixture in real time, in a loop, and records when it
// sent each keyframe (loopback: when the server got it).
type publisher struct {
	url  string
	tags []tag
	loop uint32
	keys *keyTimes
}

func (p *publisher) run(ctx context.Context) error {
	sess := lalrtmp.NewPushSession(func(o *lalrtmp.PushSessionOption) { o.PushTimeoutMs = 10000 })
	if err := sess.Push(p.url); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer func() { _ = sess.Dispose() }()
	start := time.Now()
	for n := uint32(0); ; n++ {
		for _, t := range p.tags {
			if n > 0 && t.seqHeader {
				continue // sequence headers once
			}
			ts := t.ts + n*p.loop
			if d := time.Until(start.Add(time.Duration(ts) * time.Millisecond)); d > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
			}
			csid := 6
			if t.typ == 8 {
				csid = 4
			}
			h := lalbase.RtmpHeader{Csid: csid, MsgLen: uint32(len(t.body)), MsgTypeId: t.typ, MsgStreamId: 1, TimestampAbs: ts}
			if err := sess.Write(lalrtmp.Message2Chunks(t.body, &h)); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			if t.key {
				p.keys.add(time.Now())
			}
		}
	}
}

// keyTimes are the send times of one stream's keyframes.
type keyTimes struct {
	mu sync.Mutex
	t  []time.Time
}

func (k *keyTimes) add(t time.Time) {
	k.mu.Lock()
	k.t = append(k.t, t)
	if len(k.t) > 64 {
		k.t = append(k.t[:0], k.t[len(k.t)-32:]...)
	}
	k.mu.Unlock()
}

// before is the last keyframe sent at or before t.
func (k *keyTimes) before(t time.Time) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.t) - 1; i >= 0; i-- {
		if !k.t[i].After(t) {
			return k.t[i], true
		}
	}
	return time.Time{}, false
}

// listings watches a playlist directory with inotify: each time a
// playlist lists a new segment, the delay since the keyframe that ended it
// (the last one sent before) is one sample.
type listings struct {
	w    *fsnotify.Watcher
	dir  string
	mu   sync.Mutex
	keys map[string]*keyTimes // by playlist file name
	last map[string]int64     // newest listed media sequence number
	lat  map[string][]float64 // ms
	late map[string]int
	done chan struct{}
}

func watchListings(dir string) (*listings, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if err := w.Add(dir); err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	l := &listings{w: w, dir: dir, keys: map[string]*keyTimes{}, last: map[string]int64{}, lat: map[string][]float64{}, late: map[string]int{}, done: make(chan struct{})}
	go l.loop()
	return l, nil
}

func (l *listings) keysFor(name string) *keyTimes {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := &keyTimes{}
	l.keys[name] = k
	return k
}

func (l *listings) close() { _ = l.w.Close(); <-l.done }

func (l *listings) reset() {
	l.mu.Lock()
	clear(l.lat)
	clear(l.late)
	l.mu.Unlock()
}

func (l *listings) loop() {
	defer close(l.done)
	for {
		select {
		case ev, ok := <-l.w.Events:
			if !ok {
				return
			}
			now := time.Now()
			name := filepath.Base(ev.Name)
			if !strings.HasSuffix(name, ".m3u8") || !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Rename) {
				continue
			}
			l.check(name, now)
		case _, ok := <-l.w.Errors:
			if !ok {
				return
			}
		}
	}
}

func (l *listings) check(name string, now time.Time) {
	b, err := os.ReadFile(filepath.Join(l.dir, name))
	if err != nil {
		return
	}
	seq, n := int64(-1), int64(0)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"); ok {
			seq, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		} else if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	if seq < 0 || n == 0 {
		return
	}
	newest := seq + n - 1
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, seen := l.last[name]
	l.last[name] = newest
	k := l.keys[name]
	if !seen || newest <= prev || k == nil {
		return
	}
	key, ok := k.before(now)
	if !ok {
		return
	}
	d := now.Sub(key)
	if d > 500*time.Millisecond {
		l.late[name]++ // cut more than half a GOP after a keyframe: not attributable
		return
	}
	l.lat[name] = append(l.lat[name], float64(d.Microseconds())/1000)
}

// results: all latency samples (ms), late count, and the fewest samples of
// any stream.
func (l *listings) results(n int, playlist func(int) string) ([]float64, int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []float64
	late, fewest := 0, -1
	for i := range n {
		name := playlist(i)
		all = append(all, l.lat[name]...)
		late += l.late[name]
		c := len(l.lat[name]) + l.late[name]
		if fewest < 0 || c < fewest {
			fewest = c
		}
	}
	return all, late, fewest
}
