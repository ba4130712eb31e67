package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"

	"github.com/podiumlive/podium/internal/syncbuf"
)

// TestRedisOutage: Redis stops (allocation answers from the last view,
// stale; one log line), comes back empty (every box is back within one
// heartbeat), a wrong password is one clear line.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	hb := 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var boxes []*Cluster
	var logs []*syncbuf.Buffer
	for _, id := range []string{"s1", "s2", "s3"} {
		reg, err := NewRedis(srv.URL())
		require.NoError(t, err)
		buf := &syncbuf.Buffer{}
		c := New(reg, Config{Node: id, Line: "Line " + id, PublicURL: "http://" + id + ":8080", Serve: true, Heartbeat: hb, Backend: "redis"},
			func() Local { return Local{Streams: readyStream()} }, slog.New(slog.NewTextHandler(buf, nil)))
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done; reg.Close() })
		boxes, logs = append(boxes, c), append(logs, buf)
	}
	nodesOf := func(c *Cluster) int {
		n, stale := c.Nodes(ctx)
		if stale {
			return -1
		}
		return len(n)
	}
	require.Eventually(t, func() bool { return nodesOf(boxes[0]) == 3 }, 3*time.Second, 20*time.Millisecond)

	srv.Stop()
	require.Eventually(t, func() bool { return boxes[0].Status().State == "down" }, 3*time.Second, 20*time.Millisecond)
	start := time.Now()
	a, err := boxes[1].Play(ctx, room())
	require.NoError(t, err)
	require.True(t, a.Stale)
	require.Less(t, time.Since(start), 250*time.Millisecond, "a down registry does not slow allocation")
	time.Sleep(3 * hb)
	for _, l := range logs {
		require.Equal(t, 1, strings.Count(l.String(), "cluster registry unreachable"), l.String())
	}

	require.NoError(t, srv.Start()) // empty
	back := time.Now()
	require.Eventually(t, func() bool { return nodesOf(boxes[2]) == 3 }, 5*time.Second, 10*time.Millisecond)
	t.Logf("all three back %v after Redis restarted empty (heartbeat %v, retries every half heartbeat at most)", time.Since(back).Round(time.Millisecond), hb)
	require.Less(t, time.Since(back), hb+300*time.Millisecond)
	for _, l := range logs {
		require.Contains(t, l.String(), "cluster registry back")
	}

	// Redis answering slowly (every client paused 1.5 s): allocation
	// answers within its 500 ms budget, from the last view.
	pause, err := NewRedis(srv.URL())
	require.NoError(t, err)
	require.NoError(t, pause.rdb.Do(ctx, "CLIENT", "PAUSE", "1500", "ALL").Err())
	pause.Close()
	start = time.Now()
	a, err = boxes[1].Play(ctx, room())
	require.NoError(t, err)
	require.Less(t, time.Since(start), 1200*time.Millisecond, "the 500 ms budget, then the last view")
	require.True(t, a.Stale)
	time.Sleep(1500 * time.Millisecond)
	require.Eventually(t, func() bool { return nodesOf(boxes[1]) == 3 }, 5*time.Second, 20*time.Millisecond)

	// Redis full (maxmemory reached, noeviction): the heartbeat says so
	// once, allocation answers from the last view.
	oom, err := NewRedis(srv.URL())
	require.NoError(t, err)
	require.NoError(t, oom.rdb.ConfigSet(ctx, "maxmemory", "1").Err())
	require.Eventually(t, func() bool { return strings.Contains(logs[0].String(), "out of memory") }, 3*time.Second, 20*time.Millisecond)
	a, err = boxes[0].Play(ctx, room())
	require.NoError(t, err)
	require.True(t, a.Stale)
	require.NoError(t, oom.rdb.ConfigSet(ctx, "maxmemory", "0").Err())
	oom.Close()

	// A wrong password: a clear line.
	admin, err := NewRedis(srv.URL())
	require.NoError(t, err)
	require.NoError(t, admin.rdb.ConfigSet(ctx, "requirepass", "right-password").Err())
	admin.Close()
	reg, err := NewRedis(strings.Replace(srv.URL(), "redis://", "redis://:wrong@", 1))
	require.NoError(t, err)
	defer reg.Close()
	buf := &syncbuf.Buffer{}
	c := New(reg, Config{Node: "pw", PublicURL: "http://pw", Heartbeat: hb, Backend: "redis"}, func() Local { return Local{} }, slog.New(slog.NewTextHandler(buf, nil)))
	require.Error(t, c.Beat(ctx))
	require.Contains(t, buf.String(), "cluster registry unreachable")
	require.True(t, strings.Contains(buf.String(), "authentication failed") || strings.Contains(buf.String(), "AUTH"), buf.String())
}
