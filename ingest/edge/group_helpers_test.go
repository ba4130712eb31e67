package edge

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
	ingestrtmp "github.com/podiumlive/podium/ingest/rtmp"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
	"github.com/podiumlive/podium/internal/syncbuf"
)

// fakeDir is a Directory the test sets by hand (the registry is not on
// the media path; the e2e tests use the real one).
type fakeDir struct {
	self string

	mu      sync.Mutex
	members map[string][]groups.Member
	owners  map[string]groups.Member // group + " " + key
	fns     []func()
}

func newFakeDir(self string) *fakeDir {
	return &fakeDir{self: self, members: map[string][]groups.Member{}, owners: map[string]groups.Member{}}
}

func (d *fakeDir) Members(group string) []groups.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]groups.Member(nil), d.members[group]...)
}

func (d *fakeDir) Owner(group, key string) (groups.Member, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.owners[group+" "+key]
	return m, ok
}

func (d *fakeDir) Owns(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, m := range d.owners {
		if strings.HasSuffix(k, " "+key) {
			return m.Node == d.self
		}
	}
	return true
}

func (d *fakeDir) OnChange(fn func()) {
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.mu.Unlock()
}

func (d *fakeDir) Self() string { return d.self }

// set replaces the group's members (least loaded first) and owners, then
// tells the listeners, as a registry read does.
func (d *fakeDir) set(group string, members []groups.Member, owners map[string]groups.Member) {
	d.mu.Lock()
	d.members[group] = members
	for k := range d.owners {
		if strings.HasPrefix(k, group+" ") {
			delete(d.owners, k)
		}
	}
	for k, m := range owners {
		d.owners[group+" "+k] = m
	}
	fns := d.fns
	d.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

var (
	avcC      = []byte{1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
	testVideo = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: avcC}
)

// box is an in-process Podium: a hub behind a real RTMP server, and
// optionally an Edge (a master's implicit group pulls).
type box struct {
	node string
	hub  *stream.Hub
	addr string
	edge *Edge
	stop func()
}

func (b *box) member(load float64) groups.Member {
	return groups.Member{Node: b.node, RTMP: b.addr, Load: load}
}

// startBox starts a box; edgeCfgs (may be nil) with dir make it pull.
func startBox(t *testing.T, node string, dir groups.Directory, edgeCfgs []Config, log *slog.Logger) *box {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &box{node: node, hub: stream.NewHub(stream.DefaultOptions(), nil)}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := ingestrtmp.Config{Addr: "127.0.0.1:0", PlayWait: 3 * time.Second, Vhost: func(string) bool { return true }}
	if edgeCfgs != nil {
		b.edge = New(edgeCfgs, b.hub, Options{Directory: dir, Tick: 20 * time.Millisecond,
			OriginBackoff: 30 * time.Second}, log.With("box", node))
		b.edge.Start(ctx)
		cfg.Redirect, cfg.Yield = b.edge.Redirect, b.edge.Yield
	}
	srv := ingestrtmp.New(cfg, b.hub, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Listen())
	b.addr = srv.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if b.edge != nil {
				b.edge.Wait()
			}
			b.hub.Close()
		})
	}
	t.Cleanup(b.stop)
	return b
}

// publish writes a 25 fps video stream (keyframe every 10 frames) into
// the box's hub until stopped or the test ends; DTS follows the wall
// clock, as when one relay pushes the same stream to every member.
func (b *box) publish(t *testing.T, key stream.Key) (stop func()) {
	t.Helper()
	pub, err := b.hub.Publish(key, stream.ClientInfo{Protocol: "rtmp", Remote: "relay"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	go func() {
		defer close(done)
		defer pub.Close()
		tk := time.NewTicker(40 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			d := time.Since(epoch).Truncate(time.Millisecond) % time.Hour
			kf := i%10 == 0
			nal := byte(0x41)
			if kf {
				nal = 0x65
			}
			pub.WritePacket(media.Packet{Track: testVideo, DTS: d, PTS: d, Key: kf,
				Data: append([]byte{0, 0, 0, 200, nal}, make([]byte, 199)...)})
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// player reads a stream of hub like a viewer and records the longest gap
// between packets and whether timestamps ever went back.
type player struct {
	mu      sync.Mutex
	n       int
	last    time.Time
	maxGap  time.Duration
	lastDTS time.Duration
	back    int
	err     error
	done    chan struct{}
}

func play(t *testing.T, hub *stream.Hub, key stream.Key, wait time.Duration) (*player, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := hub.Subscribe(ctx, key, stream.ClientInfo{Protocol: "rtmp", Remote: "viewer"}, wait)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &player{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer r.Close()
		for {
			pkt, err := r.Read(ctx)
			now := time.Now()
			p.mu.Lock()
			if err != nil {
				p.err = err
				p.mu.Unlock()
				return
			}
			if p.n > 0 {
				p.maxGap = max(p.maxGap, now.Sub(p.last))
				if pkt.DTS <= p.lastDTS {
					p.back++
				}
			}
			p.n++
			p.last, p.lastDTS = now, pkt.DTS
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p, nil
}

func (p *player) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// waitMore waits until the player got n more packets.
func (p *player) waitMore(t *testing.T, n int, within time.Duration) {
	t.Helper()
	from := p.count()
	require.Eventually(t, func() bool { return p.count() >= from+n }, within, 10*time.Millisecond,
		"player got %d packets, wanted %d more", p.count()-from, n)
}

func (p *player) stats() (gap time.Duration, back int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxGap, p.back, p.err
}

func edgeLog() (*syncbuf.Buffer, *slog.Logger) {
	b := &syncbuf.Buffer{}
	return b, slog.New(slog.NewTextHandler(b, nil))
}

// closedAddr is a port nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
