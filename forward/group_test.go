package forward

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ingestrtmp "github.com/podiumlive/podium/ingest/rtmp"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
)

// fakeDir is a registry view the test drives; the media path under test
// (relay → members) is real RTMP.
type fakeDir struct {
	mu      sync.Mutex
	members []groups.Member
	lost    map[string]bool // keys another member owns
	fns     []func()
}

func (d *fakeDir) Members(group string) []groups.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	if group != "masters" {
		return nil
	}
	ms := slices.Clone(d.members)
	sort.SliceStable(ms, func(i, k int) bool { return ms[i].Load < ms[k].Load })
	return ms
}

func (d *fakeDir) Owner(string, string) (groups.Member, bool) { return groups.Member{}, false }

func (d *fakeDir) Owns(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.lost[key]
}

func (d *fakeDir) OnChange(fn func()) {
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.mu.Unlock()
}

func (d *fakeDir) Self() string { return "relay" }

// set replaces the members and tells the listeners, like a registry read.
func (d *fakeDir) set(ms ...groups.Member) {
	d.mu.Lock()
	d.members = ms
	d.mu.Unlock()
	d.changed()
}

func (d *fakeDir) setLost(key string, lost bool) {
	d.mu.Lock()
	if d.lost == nil {
		d.lost = make(map[string]bool)
	}
	d.lost[key] = lost
	d.mu.Unlock()
	d.changed()
}

func (d *fakeDir) changed() {
	d.mu.Lock()
	fns := slices.Clone(d.fns)
	d.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// member is an in-process Podium RTMP server that a test can stop (its
// connections close, as a killed master's do).
type member struct {
	*slave
	node string
	stop func()
}

func startMember(t *testing.T, node string) *member {
	t.Helper()
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	srv := ingestrtmp.New(ingestrtmp.Config{Addr: "127.0.0.1:0"}, hub, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() { stop(); hub.Close() })
	return &member{slave: &slave{hub: hub, addr: srv.Addr().String()}, node: node, stop: stop}
}

func (m *member) info(load float64) groups.Member {
	return groups.Member{Node: m.node, RTMP: m.addr, Load: load}
}

// relayKey is what a relay forwards; the members receive it on their
// default vhost.
func relayKey(name string) stream.Key { return stream.Key{Vhost: "transcode", App: "live", Name: name} }

func memberKey(name string) stream.Key {
	return stream.Key{Vhost: "__defaultVhost__", App: "live", Name: name}
}

// flowing reports whether m has name with media arriving.
func (m *member) flowing(name string) bool { return m.slave.flowing(name) }

func (s *slave) flowing(name string) bool {
	st := s.hub.Get(memberKey(name))
	return st != nil && st.Stats().In.Packets > 5
}

// twoMembers starts members a (least loaded) and b, a relay hub and its
// manager with destination group:masters; tune adjusts the options.
func twoMembers(t *testing.T, tune func(*Options)) (a, b *member, dir *fakeDir, hub *stream.Hub, mgr *Manager) {
	t.Helper()
	a, b = startMember(t, "a"), startMember(t, "b")
	dir = &fakeDir{}
	dir.set(a.info(0), b.info(1))
	hub = stream.NewHub(stream.DefaultOptions(), nil)
	t.Cleanup(hub.Close)
	o := groupOpts(dir)
	if tune != nil {
		tune(&o)
	}
	return a, b, dir, hub, startGroupManager(t, hub, o)
}

func groupOpts(dir groups.Directory) Options {
	o := testOpts()
	o.ConnectTimeout = 2 * time.Second // 40 connects at once under -race
	o.Groups = dir
	return o
}

func startGroupManager(t *testing.T, hub *stream.Hub, o Options) *Manager {
	t.Helper()
	m := NewManager(hub, map[string]Settings{"transcode": {Destinations: []string{"group:masters"}, HopLimit: 1}}, o, nil)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	t.Cleanup(func() { cancel(); m.Wait() })
	return m
}

func groupStats(m *Manager, name string) Stats {
	for _, s := range m.Stats() {
		if s.Stream == relayKey(name).String() {
			return s
		}
	}
	return Stats{}
}

// TestGroupSpread: bursts of publishes at once spread over the members
// although the registry's figures do not change meanwhile: 10 over 2
// (at least 3 each), 40 over 4 (max/min ≤ 1.5).
func TestGroupSpread(t *testing.T) {
	for _, tc := range []struct{ members, streams int }{{2, 10}, {4, 40}} {
		t.Run(fmt.Sprintf("%d_over_%d", tc.streams, tc.members), func(t *testing.T) {
			dir := &fakeDir{}
			var ms []*member
			var infos []groups.Member
			for i := range tc.members {
				m := startMember(t, fmt.Sprintf("m%d", i))
				ms = append(ms, m)
				infos = append(infos, m.info(0.1*float64(i)))
			}
			dir.set(infos...)
			hub := stream.NewHub(stream.DefaultOptions(), nil)
			defer hub.Close()
			mgr := startGroupManager(t, hub, groupOpts(dir))
			for i := range tc.streams {
				publishLoop(t, hub, relayKey(fmt.Sprintf("c%d", i)), stream.ClientInfo{Protocol: "test"})
			}
			counts := make([]int, tc.members)
			require.Eventually(t, func() bool {
				total := 0
				for i, m := range ms {
					counts[i] = len(m.hub.Streams())
					total += counts[i]
				}
				return total == tc.streams
			}, 10*time.Second, 50*time.Millisecond)
			var moves uint64
			for _, s := range mgr.Stats() {
				moves += s.Moves
			}
			t.Logf("streams per member: %v, moves %d", counts, moves)
			lo, hi := slices.Min(counts), slices.Max(counts)
			require.GreaterOrEqual(t, lo, 3)
			require.LessOrEqual(t, float64(hi)/float64(lo), 1.5)
			for _, s := range mgr.Stats() {
				require.Equal(t, "group:masters", s.Destination)
				require.Zero(t, s.Moves)
			}
		})
	}
}

// TestPickerCountsOwnAssignments: the picker's own assignments count until
// the registry's figures show them, then the figures alone.
func TestPickerCountsOwnAssignments(t *testing.T) {
	dir := &fakeDir{}
	dir.set(groups.Member{Node: "a", RTMP: "a:1", Load: 0}, groups.Member{Node: "b", RTMP: "b:1", Load: 0.5})
	p := newPicker(dir, time.Second)
	var got []string
	for range 4 {
		m, ok := p.pick("masters", false)
		require.True(t, ok)
		got = append(got, m.Node)
	}
	// a (0) → a (1) is above b (0.5) → b → ...
	require.Equal(t, []string{"a", "b", "a", "b"}, got)
	// The registry now shows a with 2 streams and b with 2: nothing is
	// pending; per stream each costs its own load / streams.
	dir.set(groups.Member{Node: "a", RTMP: "a:1", Load: 2, Streams: 2}, groups.Member{Node: "b", RTMP: "b:1", Load: 4, Streams: 2})
	got = got[:0]
	for range 3 {
		m, _ := p.pick("masters", false)
		got = append(got, m.Node)
	}
	// a: 2, 3, 4 (ties keep the order) vs b: 4.
	require.Equal(t, []string{"a", "a", "a"}, got)
	p.fail("a")
	m, ok := p.pick("masters", false)
	require.True(t, ok)
	require.Equal(t, "b", m.Node, "a member in local backoff is skipped")
	p.fail("b")
	_, ok = p.pick("masters", false)
	require.False(t, ok)
	m, ok = p.pick("masters", true)
	require.True(t, ok, "all in backoff: the least loaded is retried when asked")
	require.Equal(t, "a", m.Node)
}

// TestGroupStickyAndMove: a stream stays on its member when another gets
// less loaded; when its member dies it moves within 3 s, resumes on a
// keyframe with its sequence headers, and the publisher stays.
func TestGroupStickyAndMove(t *testing.T) {
	a, b, dir, hub, mgr := twoMembers(t, nil)
	pub := publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool { return a.flowing("s1") }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "a", groupStats(mgr, "s1").Member)

	// b is now the least loaded: the stream stays where it works.
	dir.set(a.info(5), b.info(0))
	time.Sleep(500 * time.Millisecond)
	require.True(t, a.flowing("s1"))
	require.Nil(t, b.hub.Get(memberKey("s1")))
	require.Zero(t, groupStats(mgr, "s1").Moves)

	killed := time.Now()
	a.stop()
	require.Eventually(t, func() bool { return b.flowing("s1") }, 3*time.Second, 10*time.Millisecond)
	took := time.Since(killed)
	t.Logf("moved in %v", took)
	require.LessOrEqual(t, took, 3*time.Second)
	s := groupStats(mgr, "s1")
	require.Equal(t, "b", s.Member)
	require.Equal(t, uint64(1), s.Moves)
	require.Equal(t, StateForwarding, s.State)
	require.Same(t, pub, hub.Get(relayKey("s1")), "the publisher is never dropped")

	// The new member's stream is decodable from its start: the sequence
	// header came, and the first frame it got was a keyframe (its GOP cache
	// starts there).
	st := b.hub.Get(memberKey("s1"))
	r, err := b.hub.Subscribe(context.Background(), memberKey("s1"), stream.ClientInfo{Protocol: "test"}, 0)
	require.NoError(t, err)
	defer r.Close()
	video, _ := st.Tracks()
	require.NotNil(t, video)
	require.Equal(t, avcC, video.Config)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	batch, err := r.ReadBatch(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, batch)
	require.True(t, batch[0].Key, "output resumes on a keyframe")
	r.Done()
}

// squat publishes key on hub (the name is then taken: a publish of it is
// refused) until the returned func is called.
func squat(t *testing.T, hub *stream.Hub, key stream.Key) func() {
	t.Helper()
	pub, err := hub.Publish(key, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	var once sync.Once
	release := func() { once.Do(pub.Close) }
	t.Cleanup(release)
	return release
}

// TestGroupRefusedAndNoMoveBack: a member that refuses the publish is
// left at once for the next; once it accepts again (and is the least
// loaded) the stream stays where it is, while new streams go there.
func TestGroupRefusedAndNoMoveBack(t *testing.T) {
	a, b, dir, hub, mgr := twoMembers(t, func(o *Options) { o.MemberBackoff = 200 * time.Millisecond })
	release := squat(t, a.hub, memberKey("s1"))
	start := time.Now()
	publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool { return b.flowing("s1") }, 3*time.Second, 10*time.Millisecond)
	t.Logf("on b %v after the publish", time.Since(start))
	s := groupStats(mgr, "s1")
	require.Equal(t, uint64(1), s.Moves)
	// The refusal reads "rejected by the server", or "server closed the
	// connection" when the server's close outruns its answer.
	require.Contains(t, s.LastError, a.addr)

	release()
	dir.set(a.info(0), b.info(5))
	time.Sleep(time.Second)
	s = groupStats(mgr, "s1")
	require.Equal(t, "b", s.Member, "never moves back by itself")
	require.Equal(t, uint64(1), s.Moves)
	require.Nil(t, a.hub.Get(memberKey("s1")))

	publishLoop(t, hub, relayKey("s2"), stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool { return a.flowing("s2") }, 3*time.Second, 10*time.Millisecond,
		"the member that refused takes new streams once its backoff ended")
}

// TestGroupMovesRateLimited: members that drop the stream as soon as it
// arrives (flapping) get it MoveBurst times at once, then once per
// MoveEvery: the stream does not bounce.
func TestGroupMovesRateLimited(t *testing.T) {
	a, b, _, hub, mgr := twoMembers(t, func(o *Options) {
		o.MemberBackoff = time.Millisecond // only the move budget holds the stream back
		o.MoveBurst, o.MoveEvery = 2, time.Second
	})
	ctx, cancel := context.WithCancel(context.Background())
	kicked := make(chan struct{})
	go func() {
		defer close(kicked)
		for ctx.Err() == nil {
			for _, m := range []*member{a, b} {
				if st := m.hub.Get(memberKey("s1")); st != nil {
					st.Kick()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-kicked }()
	publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	time.Sleep(2500 * time.Millisecond)
	s := groupStats(mgr, "s1")
	t.Logf("in 2.5 s: %d moves, %d reconnects, last error %q", s.Moves, s.Reconnects, s.LastError)
	require.GreaterOrEqual(t, s.Moves, uint64(3), "it keeps moving off failing members")
	require.LessOrEqual(t, s.Moves, uint64(5), "2 at once, then 1 a second")
}

// TestGroupMemberLeaves: a member that leaves the group (the registry no
// longer lists it) loses its streams to another member within 3 s.
func TestGroupMemberLeaves(t *testing.T) {
	a, b, dir, hub, mgr := twoMembers(t, nil)
	logs := &lockedBuffer{}
	mgr.mu.Lock()
	mgr.log = slog.New(slog.NewTextHandler(logs, nil))
	mgr.mu.Unlock()
	publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool { return a.flowing("s1") }, 5*time.Second, 10*time.Millisecond)
	left := time.Now()
	dir.set(b.info(1))
	require.Eventually(t, func() bool { return b.flowing("s1") }, 3*time.Second, 10*time.Millisecond)
	t.Logf("moved in %v", time.Since(left))
	require.Eventually(t, func() bool { return a.hub.Get(memberKey("s1")) == nil }, 3*time.Second, 10*time.Millisecond)
	s := groupStats(mgr, "s1")
	require.Equal(t, uint64(1), s.Moves)
	require.Equal(t, "b", s.Member)
	require.Equal(t, 1, strings.Count(logs.String(), `msg="forward moved"`), logs.String())
	require.Contains(t, logs.String(), `msg="forward moved" stream=transcode/live/s1 destination=group:masters from=a to=b reason="a: member left the group"`)
}

// lockedBuffer is a log sink handlers write to from their goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClaimLoserHolds: a stream another member of the group owns is not
// forwarded to this box's slaves (nor a transcoder's output of it); it
// starts when this box wins the claim and stops when it loses it.
func TestClaimLoserHolds(t *testing.T) {
	sl := startSlave(t)
	dir := &fakeDir{}
	dir.setLost(relayKey("s1").String(), true)
	dir.setLost("__defaultVhost__/live/in", true)
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	mgr := NewManager(hub, map[string]Settings{"transcode": {Destinations: []string{sl.addr}, HopLimit: 1}}, groupOpts(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	mgr.Start(ctx)
	defer func() { cancel(); mgr.Wait() }()
	publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	publishLoop(t, hub, relayKey("out"), stream.ClientInfo{Protocol: "transcode", Remote: "__defaultVhost__/live/in"})
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, mgr.Stats())
	require.Empty(t, sl.hub.Streams())

	dir.setLost(relayKey("s1").String(), false)
	require.Eventually(t, func() bool { return sl.flowing("s1") }, 3*time.Second, 10*time.Millisecond)
	require.Nil(t, sl.hub.Get(memberKey("out")), "the output of a class another member owns stays held")
	dir.setLost("__defaultVhost__/live/in", false)
	require.Eventually(t, func() bool { return sl.flowing("out") }, 3*time.Second, 10*time.Millisecond)

	dir.setLost(relayKey("s1").String(), true)
	require.Eventually(t, func() bool { return sl.hub.Get(memberKey("s1")) == nil }, 3*time.Second, 10*time.Millisecond)
	require.Len(t, mgr.Stats(), 1)
}

// TestGroupWithoutCluster: with no registry, a group destination forwards
// nowhere and says so in its stats.
func TestGroupWithoutCluster(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	mgr := startGroupManager(t, hub, testOpts())
	publishLoop(t, hub, relayKey("s1"), stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool { return len(mgr.Stats()) == 1 }, 3*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		s := mgr.Stats()[0]
		return s.Destination == "group:masters" && s.State == StateBackoff && strings.Contains(s.LastError, "no cluster registry")
	}, 3*time.Second, 10*time.Millisecond)
}
