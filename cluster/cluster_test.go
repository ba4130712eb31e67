package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/syncbuf"
)

// fixture is an allocator box ("alloc", serve off) on a registry, and a
// way to add other nodes.
type fixture struct {
	t    *testing.T
	reg  Registry
	c    *Cluster
	logs *syncbuf.Buffer
}

func newFixture(t *testing.T, reg Registry) *fixture {
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	c := New(reg, Config{Node: "alloc", Line: "alloc", PublicURL: "http://10.0.0.1:8080", Heartbeat: 2 * time.Second}, func() Local {
		return Local{Streams: []Stream{{Vhost: "transcode", App: "live", Name: "room101", LastFrameMs: 10}}}
	}, log)
	return &fixture{t: t, reg: reg, c: c, logs: logs}
}

func readyStream() []Stream {
	return []Stream{
		{Vhost: "__defaultVhost__", App: "live", Name: "room101", FLV: "/live/room101.flv", LastFrameMs: 20},
		{Vhost: "transcode", App: "live", Name: "room101", HLS: "/live/room101.m3u8", FLV: "/live/room101.flv?vhost=transcode", LastFrameMs: 20},
	}
}

// node announces a serving node with the stream ready; edit changes it.
func (f *fixture) node(id string, ttl time.Duration, edit func(*Node)) {
	n := Node{V: 1, ID: id, Kind: KindPodium, Line: "Line " + id, URL: "http://" + id + ":8080", Serve: true,
		State: StateServing, Streams: readyStream(), HeartbeatMs: 2000}
	if edit != nil {
		edit(&n)
	}
	b, err := json.Marshal(n)
	require.NoError(f.t, err)
	require.NoError(f.t, f.reg.Announce(context.Background(), id, "i-"+id, b, ttl, 0))
}

func (f *fixture) play(req PlayRequest) (Answer, error) {
	return f.c.Play(context.Background(), req)
}

func room() PlayRequest { return PlayRequest{App: "live", Stream: "room101"} }

func TestSelectionSpread(t *testing.T) {
	f := newFixture(t, NewMemory(nil))
	require.NoError(t, f.c.Beat(context.Background()))
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		f.node(id, 6*time.Second, nil)
	}
	count := map[string]int{}
	for range 1000 {
		a, err := f.play(room())
		require.NoError(t, err)
		count[a.Node]++
		require.Equal(t, "http://"+a.Node+":8080/live/room101.m3u8", a.URL)
		require.Len(t, a.Alternates, 3)
	}
	require.Len(t, count, 4, "the allocator box (serve off) is never handed out: %v", count)
	lo, hi := 1000, 0
	for _, n := range count {
		lo, hi = min(lo, n), max(hi, n)
	}
	t.Logf("spread %v, max/min %.3f", count, float64(hi)/float64(lo))
	require.LessOrEqual(t, float64(hi)/float64(lo), 1.3)

	// Viewers reported by a heartbeat count as load: a node already full
	// of viewers gets few new ones.
	f.node("n1", 6*time.Second, func(n *Node) { n.Viewers = 600 })
	count = map[string]int{}
	for range 300 {
		a, err := f.play(room())
		require.NoError(t, err)
		count[a.Node]++
	}
	require.Less(t, count["n1"], 30, "%v", count)
}

func TestSelectionHeadroomDrainingLine(t *testing.T) {
	f := newFixture(t, NewMemory(nil))
	require.NoError(t, f.c.Beat(context.Background()))
	f.node("full", 6*time.Second, func(n *Node) { n.MaxViewers = 5; n.Viewers = 5 })
	f.node("drain", 6*time.Second, func(n *Node) { n.State = StateDraining })
	f.node("off", 6*time.Second, func(n *Node) { n.Serve = false })
	f.node("small", 6*time.Second, func(n *Node) { n.MaxViewers = 10 })
	for range 10 {
		a, err := f.play(room())
		require.NoError(t, err)
		require.Equal(t, "small", a.Node)
	}
	_, err := f.play(room())
	require.ErrorIs(t, err, ErrNoNode, "small is full now")

	// A requested line is preferred; FLV gets the FLV path.
	f.node("a", 6*time.Second, func(n *Node) { n.Line = "Campus A" })
	f.node("b", 6*time.Second, func(n *Node) { n.Line = "Campus B" })
	for range 20 {
		r := room()
		r.Line, r.Proto = "Campus B", ProtoFLV
		a, err := f.play(r)
		require.NoError(t, err)
		require.Equal(t, "b", a.Node)
		require.Equal(t, "http://b:8080/live/room101.flv", a.URL)
	}
	// Unknown stream, path tricks never reach here (the API refuses
	// them), a stream without fresh frames is not ready.
	_, err = f.play(PlayRequest{App: "live", Stream: "nope"})
	require.ErrorIs(t, err, ErrUnknownStream)
	f2 := newFixture(t, NewMemory(nil))
	f2.node("old", 6*time.Second, func(n *Node) {
		for i := range n.Streams {
			n.Streams[i].LastFrameMs = 9000
		}
	})
	require.NoError(t, f2.c.Beat(context.Background()))
	_, err = f2.play(room())
	require.ErrorIs(t, err, ErrNoNode)
}

func TestSelectionStale(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	reg := NewMemory(func() time.Time { return now })
	f := newFixture(t, reg)
	require.NoError(t, f.c.Beat(context.Background()))
	f.node("quiet", 6*time.Second, nil)
	f.node("live", 6*time.Second, nil)
	now = now.Add(4800 * time.Millisecond) // quiet missed two heartbeats
	f.node("live", 6*time.Second, nil)
	for range 20 {
		a, err := f.play(room())
		require.NoError(t, err)
		require.Equal(t, "live", a.Node, "a node two heartbeats late gets no new viewers")
		require.False(t, a.Stale)
	}
	now = now.Add(1300 * time.Millisecond) // quiet expired (3 heartbeats)
	nodes, _ := f.c.Nodes(context.Background())
	require.Len(t, nodes, 1, "quiet and alloc (no beat since) expired: %v", nodes)
	require.Equal(t, "live", nodes[0].ID)

	// A registry that cannot answer: the last view, marked stale, with
	// the allocations counted locally.
	f.c.reg = failing{}
	f.c.setStatus("down", fmt.Errorf("dial tcp: connection refused"))
	a, err := f.play(room())
	require.NoError(t, err)
	require.True(t, a.Stale)
	require.Equal(t, "live", a.Node)
	// The session lives on this box: a switch still answers.
	b, err := f.c.Switch(context.Background(), a.Session)
	require.NoError(t, err)
	require.True(t, b.OnlyLine)
	require.Equal(t, 1, strings.Count(f.logs.String(), "cluster registry unreachable"))
	f.c.setStatus("down", fmt.Errorf("dial tcp: connection refused"))
	require.Equal(t, 1, strings.Count(f.logs.String(), "cluster registry unreachable"), "one line per state change")
}

// failing is a registry that is down.
type failing struct{}

var errDown = fmt.Errorf("dial tcp 127.0.0.1:1: connect: connection refused")

func (failing) Announce(context.Context, string, string, []byte, time.Duration, int64) error {
	return errDown
}
func (failing) Leave(context.Context, string, string) error     { return errDown }
func (failing) Nodes(context.Context) ([]Entry, error)          { return nil, errDown }
func (failing) Session(context.Context, string) ([]byte, error) { return nil, errDown }
func (failing) Close() error                                    { return nil }
func (failing) Claim(context.Context, string, string, []string, time.Duration) (map[string]string, error) {
	return nil, errDown
}
func (failing) Release(context.Context, string, string, []string) error { return errDown }
func (failing) Owners(context.Context, []string) (map[string]map[string]string, error) {
	return nil, errDown
}
func (failing) Assign(context.Context, string, time.Duration, string, []byte, time.Duration) error {
	return errDown
}

func TestSwitchVisitsEveryLine(t *testing.T) {
	f := newFixture(t, NewMemory(nil))
	require.NoError(t, f.c.Beat(context.Background()))
	for _, id := range []string{"s1", "s2", "s3"} {
		f.node(id, 6*time.Second, nil)
	}
	a, err := f.play(room())
	require.NoError(t, err)
	seen := []string{a.Node}
	for range 2 {
		a, err = f.c.Switch(context.Background(), a.Session)
		require.NoError(t, err)
		require.NotContains(t, seen, a.Node)
		seen = append(seen, a.Node)
	}
	// Then round again, never the current one.
	b, err := f.c.Switch(context.Background(), a.Session)
	require.NoError(t, err)
	require.NotEqual(t, a.Node, b.Node)
	require.False(t, b.OnlyLine)

	_, err = f.c.Switch(context.Background(), "ps_00112233445566778899aabb")
	require.ErrorIs(t, err, ErrNoSession)
	_, err = f.c.Switch(context.Background(), "../../etc/passwd")
	require.ErrorIs(t, err, ErrNoSession)
}

func TestGarbageAndNewerEntriesSkippedOnce(t *testing.T) {
	reg := NewMemory(nil)
	f := newFixture(t, reg)
	ctx := context.Background()
	require.NoError(t, reg.Announce(ctx, "junk", "x", []byte("\x00not json"), time.Minute, 0))
	require.NoError(t, reg.Announce(ctx, "future", "y", []byte(`{"v":2,"id":"future","url":"http://f"}`), time.Minute, 0))
	f.node("good", time.Minute, nil)
	for range 3 {
		require.NoError(t, f.c.Beat(ctx))
	}
	nodes, _ := f.c.Nodes(ctx)
	ids := []string{}
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	require.Equal(t, []string{"alloc", "good"}, ids)
	logs := f.logs.String()
	require.Equal(t, 1, strings.Count(logs, `node=junk`), logs)
	require.Equal(t, 1, strings.Count(logs, `node=future`), logs)
	require.Contains(t, logs, "newer Podium")
}

func TestNodeIDTakenLogsOnce(t *testing.T) {
	reg := NewMemory(nil)
	first := newFixture(t, reg)
	second := newFixture(t, reg)
	ctx := context.Background()
	require.NoError(t, first.c.Beat(ctx))
	for range 3 {
		require.NoError(t, second.c.Beat(ctx))
	}
	require.Equal(t, 1, strings.Count(second.logs.String(), "cluster.node is already used by another box"), second.logs.String())
	require.Equal(t, "taken", second.c.Status().State)
	// The second box still allocates from the registry.
	first.node("s1", time.Minute, nil)
	a, err := second.play(room())
	require.NoError(t, err)
	require.Equal(t, "s1", a.Node)
}

func TestPlayToken(t *testing.T) {
	now := time.Now()
	tok := SignToken("0123456789abcdef", "live", "room101", now.Add(time.Minute))
	require.True(t, CheckToken("0123456789abcdef", "live", "room101", tok, now))
	require.False(t, CheckToken("0123456789abcdef", "live", "room102", tok, now))
	require.False(t, CheckToken("other-secret-0000", "live", "room101", tok, now))
	require.False(t, CheckToken("0123456789abcdef", "live", "room101", tok, now.Add(2*time.Minute)), "expired")
	require.False(t, CheckToken("0123456789abcdef", "live", "room101", "", now))

	f := newFixture(t, NewMemory(nil))
	f.c.cfg.PlaySecret = "0123456789abcdef"
	require.NoError(t, f.c.Beat(context.Background()))
	f.node("s1", time.Minute, nil)
	_, err := f.play(room())
	require.ErrorIs(t, err, ErrBadToken)
	r := room()
	r.Token = tok
	a, err := f.play(r)
	require.NoError(t, err)
	u, q, _ := strings.Cut(a.URL, "?token=")
	require.Equal(t, "http://s1:8080/live/room101.m3u8", u)
	require.True(t, CheckToken("0123456789abcdef", "live", "room101", q, now))
}

func TestParseSRS(t *testing.T) {
	body := []byte(`{"device_id":"origin1","ip":"192.168.1.20","server":"vid-x","service":"k3j9","pid":"4242",
		"rtmp":["1935"],"http":["8080"],"api":["1985"]}`)
	info, err := ParseSRS(body, "10.0.0.9")
	require.NoError(t, err)
	require.Equal(t, "origin1", info.DeviceID)
	require.Equal(t, "192.168.1.20", info.IP)
	require.Equal(t, []string{"8080"}, info.HTTP)
	// pid as a number, ports as tcp:// URLs, no ip: the peer's.
	info, err = ParseSRS([]byte(`{"server":"vid-y","pid":77,"http":["tcp://0.0.0.0:8081"]}`), "10.0.0.9")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.9", info.IP)
	require.Equal(t, "77", info.PID)
	for _, bad := range []string{`[]`, `{"ip":"1.2.3.4"}`, `{"device_id":"x","ip":"nope"}`, `{"device_id":{"a":1},"ip":"1.2.3.4"}`, `{"device_id":"a\u0000b","ip":"1.2.3.4"}`} {
		_, err := ParseSRS([]byte(bad), "")
		require.Error(t, err, bad)
	}

	// A registered SRS box is a line for streams the cluster knows, its
	// load the allocations counted against it.
	f := newFixture(t, NewMemory(nil))
	require.NoError(t, f.c.Beat(context.Background()))
	id, err := f.c.RegisterSRS(context.Background(), body, "10.0.0.9")
	require.NoError(t, err)
	require.Equal(t, "srs-origin1", id)
	a, err := f.play(room())
	require.NoError(t, err)
	require.Equal(t, "srs-origin1", a.Node)
	require.Equal(t, "http://192.168.1.20:8080/live/room101.m3u8", a.URL)
	require.Equal(t, "origin1", a.Line)
	_, err = f.play(PlayRequest{App: "live", Stream: "unknown"})
	require.ErrorIs(t, err, ErrUnknownStream, "an SRS box does not make every name known")
}

func FuzzParseSRS(f *testing.F) {
	f.Add([]byte(`{"device_id":"origin1","ip":"192.168.1.20","server":"vid-x","service":"k3j9","pid":"4242","rtmp":["1935"],"http":["8080"],"api":["1985"]}`))
	f.Add([]byte(`{"server":"s","pid":1,"http":"tcp://1.2.3.4:80"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseSRS(b, "10.0.0.1")
		if err != nil {
			return
		}
		if bytes.ContainsAny([]byte(srsID(info)), "/:\x00 ") {
			t.Fatalf("unsafe id %q", srsID(info))
		}
	})
}

// TestRegistryDownFromTheStart: a box whose registry never answered still
// hands out itself for its own ready streams (stale).
func TestRegistryDownFromTheStart(t *testing.T) {
	c := New(failing{}, Config{Node: "solo", Line: "Solo", PublicURL: "http://solo:8080", Serve: true, Heartbeat: time.Second},
		func() Local { return Local{Streams: readyStream()} }, nil)
	require.Error(t, c.Beat(context.Background()))
	a, err := c.Play(context.Background(), room())
	require.NoError(t, err)
	require.True(t, a.Stale)
	require.Equal(t, "http://solo:8080/live/room101.m3u8", a.URL)
	_, err = c.Play(context.Background(), PlayRequest{App: "live", Stream: "other"})
	require.ErrorIs(t, err, ErrUnknownStream)
}

// TestEdgeEligibleForFLV: an edge without the class is handed out for
// HTTP-FLV (it pulls on demand), not for HLS (nothing would pull).
func TestEdgeEligibleForFLV(t *testing.T) {
	f := newFixture(t, NewMemory(nil))
	require.NoError(t, f.c.Beat(context.Background()))
	f.node("edge", time.Minute, func(n *Node) { n.Pulls, n.Streams = true, nil })
	r := room()
	r.Proto = ProtoFLV
	a, err := f.play(r)
	require.NoError(t, err)
	require.Equal(t, "http://edge:8080/live/room101.flv", a.URL)
	_, err = f.play(room())
	require.ErrorIs(t, err, ErrNoNode)
}
