package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/groups"
	"github.com/podiumlive/podium/internal/redistest"
	"github.com/podiumlive/podium/internal/syncbuf"
)

// groupBox is a box in a group whose streams and CPU a test sets.
type groupBox struct {
	*Cluster
	logs *syncbuf.Buffer

	mu  sync.Mutex
	loc Local
}

var _ groups.Directory = (*Cluster)(nil)

func newGroupBox(t *testing.T, reg Registry, id, group string) *groupBox {
	t.Helper()
	b := &groupBox{logs: &syncbuf.Buffer{}}
	b.Cluster = New(reg, Config{Node: id, PublicURL: "http://" + id + ":8080", Heartbeat: 2 * time.Second, Group: group, RTMP: id + ":1935"},
		func() Local {
			b.mu.Lock()
			defer b.mu.Unlock()
			l := b.loc
			l.Streams = append([]Stream(nil), l.Streams...)
			return l
		},
		slog.New(slog.NewTextHandler(b.logs, nil)))
	return b
}

// set gives the box classes (published, transcoded when tc) and CPU.
func (b *groupBox) set(cpu float64, tc bool, names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loc = Local{CPU: cpu}
	for _, n := range names {
		b.loc.Streams = append(b.loc.Streams, Stream{Vhost: "__defaultVhost__", App: "live", Name: n, LastFrameMs: 10})
		if tc {
			b.loc.Streams = append(b.loc.Streams, Stream{Vhost: "transcode", App: "live", Name: n, LastFrameMs: 10, Transcoded: true})
			b.loc.Transcodes++
		}
	}
}

func (b *groupBox) beat(t *testing.T) {
	t.Helper()
	require.NoError(t, b.Beat(context.Background()))
}

func nodesOf(ms []groups.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Node)
	}
	return out
}

func key(name string) string { return "__defaultVhost__/live/" + name }

func TestLoad(t *testing.T) {
	n := func(cpu float64, tcs int, streams ...Stream) Node {
		return Node{CPU: cpu, Transcodes: tcs, Streams: streams}
	}
	pub := Stream{Name: "a"}
	out := Stream{Name: "a", Transcoded: true}
	pulled := Stream{Name: "b", Pulled: true}
	require.InDelta(t, 0.1, Load(n(0.1, 0)), 1e-9)
	require.InDelta(t, 1.1, Load(n(0.1, 0, pub, pulled)), 1e-9, "a pulled copy is not a class of the box")
	require.InDelta(t, 2.1, Load(n(0.1, 1, pub, out)), 1e-9, "a transcoded class costs 2")
	// CPU breaks ties, and dominates when high.
	require.Less(t, Load(n(0.2, 1, pub, out)), Load(n(0.3, 1, pub, out)))
	require.Less(t, Load(n(0.3, 3, pub, out, pub, out, pub, out)), Load(n(1.0, 1, pub, out)), "3 classes at 30% CPU < 1 class at 100%")
	require.InDelta(t, 1+1.0+4, Load(n(1.0, 0, pub)), 1e-9)
}

// TestDirectory: two masters and a relay on one registry. Members come
// least loaded first, every class has one owner, a class both masters
// have is owned by the first claimer (the other's Owns is false), an
// unpublished class is released at once and taken by the other (a move,
// logged once with its reason), a dead master's classes expire and move.
func TestDirectory(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var clock sync.Mutex
	reg := NewMemory(func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	m1, m2 := newGroupBox(t, reg, "m1", "masters"), newGroupBox(t, reg, "m2", "masters")
	relay := newGroupBox(t, reg, "relay", "")
	var changes atomic.Int32
	relay.OnChange(func() { changes.Add(1) })

	// Before any read: no members, no owner; a box owns what it has.
	require.Empty(t, relay.Members("masters"))
	require.True(t, m1.Owns(key("a")))
	require.Equal(t, "m1", m1.Self())

	m1.set(0.2, true, "a", "b")
	m2.set(0.2, true, "c")
	m1.beat(t)
	m2.beat(t)
	relay.beat(t)
	require.Equal(t, []string{"m2", "m1"}, nodesOf(relay.Members("masters")), "m2 transcodes one class, m1 two")
	ms := relay.Members("masters")
	require.Equal(t, groups.Member{Node: "m2", RTMP: "m2:1935", Load: 2.2, Streams: 1}, ms[0])
	require.Empty(t, relay.Members("other"))
	o, ok := relay.Owner("masters", key("a"))
	require.True(t, ok)
	require.Equal(t, "m1", o.Node)
	require.Equal(t, "m1:1935", o.RTMP)
	o, ok = relay.Owner("masters", "transcode/live/c")
	require.True(t, ok, "a transcode's output is claimed too")
	require.Equal(t, "m2", o.Node)
	_, ok = relay.Owner("masters", key("nosuch"))
	require.False(t, ok)
	require.True(t, relay.Owns(key("a")), "a box in no group owns what it has")
	require.Positive(t, changes.Load())

	// m2 gets class a too (a move in progress): m1 keeps it.
	m2.set(0.2, true, "c", "a")
	m2.beat(t)
	require.False(t, m2.Owns(key("a")))
	require.True(t, m2.Owns(key("c")))
	m1.beat(t)
	require.True(t, m1.Owns(key("a")))

	// m1 unpublishes a: released on m1's next beat (a nudge), m2 claims
	// it on its own; the relay logs one move.
	m1.set(0.2, true, "b")
	m1.beat(t)
	m2.beat(t)
	require.True(t, m2.Owns(key("a")))
	before := changes.Load()
	relay.beat(t)
	require.Greater(t, changes.Load(), before)
	o, _ = relay.Owner("masters", key("a"))
	require.Equal(t, "m2", o.Node)
	relay.beat(t)
	_, moves := relay.Groups()
	require.Len(t, moves, 2, "a and its transcode: %v", moves)
	require.Equal(t, Move{Group: "masters", Stream: key("a"), From: "m1", To: "m2", Reason: MoveReleased, At: moves[0].At}, moves[0])
	require.Equal(t, 1, strings.Count(relay.logs.String(), `msg="class moved" group=masters stream=__defaultVhost__/live/a from=m1 to=m2 reason=released`), relay.logs.String())
	// No change, no callback.
	before = changes.Load()
	relay.beat(t)
	require.Equal(t, before, changes.Load())

	// m1 dies (no more heartbeats): after 2.5 heartbeats its claims lapse
	// while its node entry still lists b (a late member is still one); m2
	// gets b and claims it: a move, "expired" (m1 is 2.5 beats late).
	advance(5*time.Second + 100*time.Millisecond)
	m2.set(0.2, true, "c", "a", "b")
	m2.beat(t)
	relay.beat(t)
	require.Equal(t, []string{"m1", "m2"}, nodesOf(relay.Members("masters")))
	o, _ = relay.Owner("masters", key("b"))
	require.Equal(t, "m2", o.Node)
	_, moves = relay.Groups()
	require.Len(t, moves, 4)
	require.Equal(t, "m1", moves[3].From)
	require.Equal(t, MoveExpired, moves[3].Reason)
	// At three heartbeats m1's entry expires: it is no member.
	advance(time.Second)
	m2.beat(t)
	relay.beat(t)
	require.Equal(t, []string{"m2"}, nodesOf(relay.Members("masters")))

	infos, _ := relay.Groups()
	require.Len(t, infos, 1)
	require.Equal(t, "masters", infos[0].Name)
	require.Equal(t, []MemberInfo{{Node: "m2", RTMP: "m2:1935", Load: 6.2, Streams: 3, Transcodes: 3, CPU: 0.2}}, infos[0].Members)
	require.Equal(t, map[string]string{
		key("a"): "m2", "transcode/live/a": "m2", key("b"): "m2", "transcode/live/b": "m2", key("c"): "m2", "transcode/live/c": "m2",
	}, infos[0].Owners)
}

// TestDirectoryRedisDown: with Redis gone the answers are the last known
// ones, at once, and the outage is logged once.
func TestDirectoryRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	var boxes []*groupBox
	for _, id := range []string{"m1", "m2", "relay"} {
		reg, err := NewRedis(srv.URL())
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		g := "masters"
		if id == "relay" {
			g = ""
		}
		boxes = append(boxes, newGroupBox(t, reg, id, g))
	}
	m1, m2, relay := boxes[0], boxes[1], boxes[2]
	m1.set(0.1, false, "a")
	m2.set(0.1, false, "b", "c")
	for _, b := range boxes {
		b.beat(t)
	}
	m1.beat(t) // sees m2's claims
	want := relay.Members("masters")
	require.Equal(t, []string{"m1", "m2"}, nodesOf(want))

	srv.Stop()
	for range 3 {
		require.Error(t, relay.Beat(context.Background()))
		require.Error(t, m1.Beat(context.Background()))
	}
	start := time.Now()
	for range 1000 {
		require.Equal(t, want, relay.Members("masters"))
		o, ok := relay.Owner("masters", key("c"))
		require.True(t, ok)
		require.Equal(t, "m2", o.Node)
		require.True(t, m1.Owns(key("a")))
		require.False(t, m1.Owns(key("b")))
	}
	require.Less(t, time.Since(start), 200*time.Millisecond, "never waits on Redis")
	require.Equal(t, 1, strings.Count(relay.logs.String(), "cluster registry unreachable"), relay.logs.String())

	// Back, empty: every box claims again within a beat.
	require.NoError(t, srv.Start())
	m1.beat(t)
	m2.beat(t)
	relay.beat(t)
	o, ok := relay.Owner("masters", key("a"))
	require.True(t, ok)
	require.Equal(t, "m1", o.Node)
	_, moves := relay.Groups()
	require.Empty(t, moves, "the same owners again: nothing moved")
}

// TestClaimBurst: two masters get the same 30 classes at once (a relay's
// burst racing a restart); every class ends with exactly one owner, both
// masters agree, and the one that lost a class does not own it.
func TestClaimBurst(t *testing.T) {
	srv := redistest.Start(t)
	var boxes []*groupBox
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("room%d", i))
	}
	for _, id := range []string{"m1", "m2"} {
		reg, err := NewRedis(srv.URL())
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		b := newGroupBox(t, reg, id, "masters")
		b.set(0.1, false, names...)
		boxes = append(boxes, b)
	}
	var wg sync.WaitGroup
	for _, b := range boxes {
		wg.Go(func() { b.beat(t) })
	}
	wg.Wait()
	for _, b := range boxes {
		b.beat(t) // both read each other's claims
	}
	for _, n := range names {
		o1, ok1 := boxes[0].Owner("masters", key(n))
		o2, ok2 := boxes[1].Owner("masters", key(n))
		require.True(t, ok1 && ok2)
		require.Equal(t, o1.Node, o2.Node)
		require.NotEqual(t, boxes[0].Owns(key(n)), boxes[1].Owns(key(n)), "one owner of %s", n)
	}
}

// TestNudge: with a long heartbeat, a nudge (the hub's unpublish) runs a
// claim round at once: the class is released and another member can
// claim it within milliseconds, not a heartbeat.
func TestNudge(t *testing.T) {
	reg := NewMemory(nil)
	m1, m2 := newGroupBox(t, reg, "m1", "masters"), newGroupBox(t, reg, "m2", "masters")
	m1.cfg.Heartbeat, m2.cfg.Heartbeat = time.Minute, time.Minute
	m1.set(0.1, false, "a")
	m2.set(0.1, false, "a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m1.Run(ctx) }()
	require.Eventually(t, func() bool { return m1.Status().State == "up" }, 2*time.Second, 5*time.Millisecond)
	m2.beat(t)
	require.False(t, m2.Owns(key("a")))

	m1.set(0.1, false)
	start := time.Now()
	m1.Nudge()
	require.Eventually(t, func() bool {
		got, err := reg.Claim(context.Background(), "masters", "m2", []string{key("a")}, time.Minute)
		return err == nil && got[key("a")] == "m2"
	}, time.Second, 2*time.Millisecond)
	require.Less(t, time.Since(start), 500*time.Millisecond)

	// A clean stop releases every claim.
	m1.set(0.1, false, "b")
	m1.Nudge()
	require.Eventually(t, func() bool {
		o, _ := reg.Owners(context.Background(), []string{"masters"})
		return o["masters"][key("b")] == "m1"
	}, time.Second, 2*time.Millisecond)
	cancel()
	<-done
	o, err := reg.Owners(context.Background(), []string{"masters"})
	require.NoError(t, err)
	require.NotContains(t, o["masters"], key("b"))
}
