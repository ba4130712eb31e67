package edge

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
	"github.com/podiumlive/podium/rtmp"
)

var (
	classKey  = stream.Key{Vhost: "transcode", App: "live", Name: "room1"}
	edgeKey   = stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "room1"}
	edgeGroup = Config{Vhost: "__defaultVhost__", OriginVhost: "transcode", Groups: []string{"masters"},
		ConnectTimeout: 500 * time.Millisecond, IdleTimeout: time.Second, IdleClose: 2 * time.Second}
)

// TestGroupOwnerFirst: an edge whose origin is group:masters pulls from
// the member that owns the stream, looked up by the key as the origin
// names it (the origin vhost), even when another member is less loaded;
// it never tries itself.
func TestGroupOwnerFirst(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	b := startBox(t, "b", nil, nil, nil)
	a.publish(t, classKey)
	b.publish(t, classKey)
	dir := newFakeDir("edge")
	dir.set("masters", []groups.Member{
		{Node: "edge", RTMP: closedAddr(t)}, // this box: never tried
		a.member(0.1), b.member(0.9),
	}, map[string]groups.Member{classKey.String(): b.member(0.9)})
	e := startBox(t, "edge", dir, []Config{edgeGroup}, nil)

	p, err := play(t, e.hub, edgeKey, 5*time.Second)
	require.NoError(t, err)
	p.waitMore(t, 10, 3*time.Second)
	up, ok := e.edge.Upstream(edgeKey)
	require.True(t, ok)
	require.Equal(t, b.addr, up.Origin, "the owner first")
	require.Equal(t, StatePlaying, up.State)
	require.Zero(t, e.edge.Counters().UpstreamErrors)
	require.Len(t, b.hub.Get(classKey).Readers(), 1)
	require.Empty(t, a.hub.Get(classKey).Readers())
}

// TestGroupMembersByLoad: with no owner, the least-loaded live member
// that has the stream; a member without it answers not found at once (no
// wait), and the next one is tried; a stream nobody has is refused at
// once.
func TestGroupMembersByLoad(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	b := startBox(t, "b", nil, nil, nil)
	c := startBox(t, "c", nil, nil, nil)
	b.publish(t, classKey)
	c.publish(t, classKey)
	dir := newFakeDir("edge")
	dir.set("masters", []groups.Member{a.member(0.1), c.member(0.2), b.member(0.3)}, nil)
	logs, log := edgeLog()
	e := startBox(t, "edge", dir, []Config{edgeGroup}, log)

	start := time.Now()
	p, err := play(t, e.hub, edgeKey, 5*time.Second)
	require.NoError(t, err)
	require.Less(t, time.Since(start), time.Second, "a (least loaded) has no stream: said so at once")
	p.waitMore(t, 5, 3*time.Second)
	up, _ := e.edge.Upstream(edgeKey)
	require.Equal(t, c.addr, up.Origin, "the least-loaded member that has it")
	require.Contains(t, logs.String(), "StreamNotFound")

	// A class nobody has: not found after one round, not a hang.
	start = time.Now()
	_, err = play(t, e.hub, stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "none"}, 10*time.Second)
	require.ErrorIs(t, err, stream.ErrNotFound)
	require.Contains(t, err.Error(), "no origin has")
	require.Less(t, time.Since(start), 2*time.Second)
}

// TestGroupDeadOwnerNextMember: the owner is killed; the registry still
// names it (its claim has not expired), but a refused connection is
// "dead now": the edge goes to the next member at once, the player keeps
// its reader and sees monotonic timestamps and a stall under 3 s.
func TestGroupDeadOwnerNextMember(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	b := startBox(t, "b", nil, nil, nil)
	a.publish(t, classKey)
	b.publish(t, classKey)
	dir := newFakeDir("edge")
	dir.set("masters", []groups.Member{a.member(0.1), b.member(0.2)},
		map[string]groups.Member{classKey.String(): a.member(0.1)})
	e := startBox(t, "edge", dir, []Config{edgeGroup}, nil)
	p, err := play(t, e.hub, edgeKey, 5*time.Second)
	require.NoError(t, err)
	p.waitMore(t, 10, 3*time.Second)
	up, _ := e.edge.Upstream(edgeKey)
	require.Equal(t, a.addr, up.Origin)

	killed := time.Now()
	a.stop()
	p.waitMore(t, 10, 3*time.Second)
	resumed := time.Since(killed)
	up, _ = e.edge.Upstream(edgeKey)
	require.Equal(t, b.addr, up.Origin)
	require.Equal(t, uint64(1), up.Switches)
	gap, back, perr := p.stats()
	require.NoError(t, perr, "the player's reader never ended")
	require.Zero(t, back, "timestamps stay monotonic")
	require.Less(t, gap, 3*time.Second)
	t.Logf("owner killed: 10 packets from the next member after %s; longest stall %s", resumed, gap)
	st := e.edge.Origins()
	require.Len(t, st, 2)
	for _, s := range st {
		require.Equal(t, s.Origin != a.addr, s.Healthy, "%+v", s)
	}
}

// TestGroupFollowsMove: the owner dies and the class shows up on a member
// that did not have it (the relay moved it); the registry names the new
// owner a moment later. The edge keeps looking (every member says "not
// found" at once meanwhile), and the directory's change wakes it: the
// player never sees the stream end.
func TestGroupFollowsMove(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	b := startBox(t, "b", nil, nil, nil)
	c := startBox(t, "c", nil, nil, nil)
	a.publish(t, classKey)
	dir := newFakeDir("edge")
	dir.set("masters", []groups.Member{a.member(0.1), b.member(0.2), c.member(0.3)},
		map[string]groups.Member{classKey.String(): a.member(0.1)})
	e := startBox(t, "edge", dir, []Config{edgeGroup}, nil)
	p, err := play(t, e.hub, edgeKey, 5*time.Second)
	require.NoError(t, err)
	p.waitMore(t, 10, 3*time.Second)

	a.stop()
	time.Sleep(700 * time.Millisecond) // the relay's forward reconnects
	moved := time.Now()
	c.publish(t, classKey)
	time.Sleep(300 * time.Millisecond) // the next registry read
	dir.set("masters", []groups.Member{b.member(0.2), c.member(0.4)},
		map[string]groups.Member{classKey.String(): c.member(0.4)})
	p.waitMore(t, 10, 3*time.Second)
	t.Logf("class moved: 10 packets from the new owner %s after its publish", time.Since(moved))
	up, _ := e.edge.Upstream(edgeKey)
	require.Equal(t, c.addr, up.Origin)
	_, back, perr := p.stats()
	require.NoError(t, perr)
	require.Zero(t, back)
	require.Less(t, e.edge.Counters().UpstreamErrors, uint64(5), "the retries while the class moved are not each an error")
}

// TestGroupNoDirectory: without a cluster a group origin matches nothing:
// one log line at start, and plays are refused at once; plain origins
// beside it still work.
func TestGroupNoDirectory(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	a.publish(t, edgeKey)
	logs, log := edgeLog()
	cfg := edgeGroup
	cfg.OriginVhost = ""
	cfg.Origins = []string{a.addr}
	e := startBox(t, "edge", nil, []Config{cfg}, log)
	p, err := play(t, e.hub, edgeKey, 5*time.Second)
	require.NoError(t, err)
	p.waitMore(t, 5, 3*time.Second)
	_, err = play(t, e.hub, stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "none"}, 5*time.Second)
	require.ErrorIs(t, err, stream.ErrNotFound)
	require.Equal(t, 1, strings.Count(logs.String(), "this box is in no cluster"), logs.String())
}

// masterCfg is the implicit group pull of a master's vhost.
func masterCfg(redirect bool) Config {
	return Config{Vhost: "transcode", Groups: []string{"masters"}, OwnerOnly: true, Redirect: redirect,
		ConnectTimeout: 500 * time.Millisecond, IdleTimeout: time.Second, IdleClose: 2 * time.Second}
}

// TestMasterPullsFromOwner: a master asked for a class it does not have
// pulls it from the member that owns it (only the owner: a member that
// has it but is not the owner is not asked), and while nobody owns it the
// player keeps waiting (no refusal) until the registry names an owner.
func TestMasterPullsFromOwner(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	c := startBox(t, "c", nil, nil, nil)
	a.publish(t, classKey)
	c.publish(t, classKey)
	dir := newFakeDir("b")
	dir.set("masters", []groups.Member{c.member(0.1), a.member(0.5)}, nil)
	b := startBox(t, "b", dir, []Config{masterCfg(false)}, nil)
	require.Equal(t, b.node, dir.Self())

	// Nobody owns it: the play waits its full wait, as on an origin.
	start := time.Now()
	_, err := play(t, b.hub, classKey, 1500*time.Millisecond)
	require.ErrorIs(t, err, stream.ErrNotFound)
	require.Contains(t, err.Error(), "no publisher within", "waited, not refused")
	require.GreaterOrEqual(t, time.Since(start), 1400*time.Millisecond)
	require.Empty(t, c.hub.Get(classKey).Readers(), "never pulled from a member that is not the owner")

	// The registry names a as the owner while a player waits.
	go func() {
		time.Sleep(300 * time.Millisecond)
		dir.set("masters", []groups.Member{c.member(0.1), a.member(0.5)},
			map[string]groups.Member{classKey.String(): a.member(0.5)})
	}()
	p, err := play(t, b.hub, classKey, 5*time.Second)
	require.NoError(t, err)
	p.waitMore(t, 10, 3*time.Second)
	require.Equal(t, Protocol, b.hub.Get(classKey).Publisher().Protocol, "an ordinary hub stream, marked as pulled")
	up, _ := b.edge.Upstream(classKey)
	require.Equal(t, a.addr, up.Origin)

	// A member asked by another with podium_nowait answers at once and
	// does not pull on its behalf: b does not have "other".
	other := stream.Key{Vhost: "transcode", App: "live", Name: "other"}
	start = time.Now()
	pl, err := rtmp.DialPull(context.Background(), "rtmp://"+b.addr+"/live/other?vhost=transcode&"+NoWaitParam+"=1",
		rtmp.PullOptions{ConnectTimeout: 2 * time.Second})
	if err == nil { // the play starts, then is told not found
		err = pl.Run(context.Background(), 3*time.Second, func(rtmp.Message) error { return nil })
		pl.Close()
	}
	require.ErrorIs(t, err, rtmp.ErrRejected)
	require.Contains(t, err.Error(), "StreamNotFound")
	require.Less(t, time.Since(start), time.Second)
	_, pulling := b.edge.Upstream(other)
	require.False(t, pulling)

	// The class moves here (the relay publishes to b over RTMP): the pull
	// gives way, the publish is accepted.
	push, err := rtmp.DialPush(context.Background(), "rtmp://"+b.addr+"/live/room1?vhost=transcode",
		rtmp.PushOptions{ConnectTimeout: 2 * time.Second})
	require.NoError(t, err, "the publish takes the stream over from the pull")
	defer push.Close(time.Second)
	require.Eventually(t, func() bool {
		st := b.hub.Get(classKey)
		return st != nil && st.Publisher().Protocol == "rtmp"
	}, 3*time.Second, 10*time.Millisecond)
	_, pulling = b.edge.Upstream(classKey)
	require.False(t, pulling, "the pull stopped")
	require.Eventually(t, func() bool { return len(a.hub.Get(classKey).Readers()) == 0 }, 3*time.Second,
		10*time.Millisecond, "and left the owner")
}

// TestMasterRedirect: with cluster.redirect a master answers an RTMP
// play of a class another member owns with SRS's RTMP 302 to the owner;
// our pull client (an SRS edge does the same) follows it and plays there.
// A stream live here, or owned by nobody, is played here.
func TestMasterRedirect(t *testing.T) {
	a := startBox(t, "a", nil, nil, nil)
	a.publish(t, classKey)
	dir := newFakeDir("b")
	dir.set("masters", []groups.Member{a.member(0.5)}, map[string]groups.Member{classKey.String(): a.member(0.5)})
	b := startBox(t, "b", dir, []Config{masterCfg(true)}, nil)

	u := "rtmp://" + b.addr + "/live/room1?vhost=transcode&token=t1"
	require.Equal(t, "rtmp://"+a.addr+"/live/room1?token=t1&vhost=transcode",
		b.edge.Redirect(classKey, url.Values{"vhost": {"transcode"}, "token": {"t1"}}))
	pl, err := rtmp.DialPull(context.Background(), u, rtmp.PullOptions{ConnectTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer pl.Close()
	require.Equal(t, 1, pl.Redirects)
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = pl.Run(ctx, 2*time.Second, func(m rtmp.Message) error {
		if m.Type == rtmp.TypeVideo {
			if n++; n >= 10 {
				return errEnough
			}
		}
		return nil
	})
	require.ErrorIs(t, err, errEnough)
	require.Len(t, a.hub.Get(classKey).Readers(), 1, "played on the owner")
	require.Nil(t, b.hub.Get(classKey), "b pulled nothing")

	// Nobody owns "other": no redirect (the play waits here).
	require.Empty(t, b.edge.Redirect(stream.Key{Vhost: "transcode", App: "live", Name: "other"}, nil))
}

var errEnough = errors.New("enough")
