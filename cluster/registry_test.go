package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// registryContract is the one behaviour both registries must have.
func registryContract(t *testing.T, reg Registry, sleep func(time.Duration)) {
	ctx := context.Background()
	ttl := 300 * time.Millisecond
	require.NoError(t, reg.Announce(ctx, "a", "inst-1", []byte(`{"x":1}`), ttl, 0))
	// Another instance may not take a live id; the holder may refresh.
	require.ErrorIs(t, reg.Announce(ctx, "a", "inst-2", []byte(`{"x":2}`), ttl, 0), ErrNodeTaken)
	require.NoError(t, reg.Announce(ctx, "a", "inst-1", []byte(`{"x":3}`), ttl, 0))
	require.NoError(t, reg.Announce(ctx, "b", "inst-3", []byte(`{"y":1}`), ttl, 0))

	require.NoError(t, reg.Assign(ctx, "a", time.Minute, "ps_01", []byte(`{"s":1}`), time.Minute))
	require.NoError(t, reg.Assign(ctx, "a", time.Minute, "ps_02", []byte(`{"s":2}`), time.Minute))
	nodes, err := reg.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.Equal(t, "a", nodes[0].ID)
	require.JSONEq(t, `{"x":3}`, string(nodes[0].Value))
	require.EqualValues(t, 2, nodes[0].Reserved)
	require.EqualValues(t, 0, nodes[1].Reserved)
	require.Greater(t, nodes[0].TTLLeft, ttl/2)
	require.LessOrEqual(t, nodes[0].TTLLeft, ttl)

	// Each viewer that joined replaces one counted allocation, never
	// below 0.
	require.NoError(t, reg.Announce(ctx, "a", "inst-1", []byte(`{"x":4}`), ttl, 1))
	nodes, _ = reg.Nodes(ctx)
	require.EqualValues(t, 1, nodes[0].Reserved)
	require.NoError(t, reg.Announce(ctx, "a", "inst-1", []byte(`{"x":4}`), ttl, 0))
	nodes, _ = reg.Nodes(ctx)
	require.EqualValues(t, 1, nodes[0].Reserved)
	require.NoError(t, reg.Announce(ctx, "a", "inst-1", []byte(`{"x":4}`), ttl, 5))
	nodes, _ = reg.Nodes(ctx)
	require.EqualValues(t, 0, nodes[0].Reserved)
	require.NoError(t, reg.Assign(ctx, "a", time.Minute, "ps_04", []byte(`{}`), time.Minute))
	nodes, _ = reg.Nodes(ctx)
	require.EqualValues(t, 1, nodes[0].Reserved, "counting starts again from 0")

	b, err := reg.Session(ctx, "ps_02")
	require.NoError(t, err)
	require.JSONEq(t, `{"s":2}`, string(b))
	_, err = reg.Session(ctx, "ps_99")
	require.ErrorIs(t, err, ErrNoSession)

	// Leave only by the holder.
	require.NoError(t, reg.Leave(ctx, "b", "inst-x"))
	nodes, _ = reg.Nodes(ctx)
	require.Len(t, nodes, 2)
	require.NoError(t, reg.Leave(ctx, "b", "inst-3"))
	nodes, _ = reg.Nodes(ctx)
	require.Len(t, nodes, 1)

	// Entries expire after their ttl; then another instance may take the id.
	sleep(ttl + 50*time.Millisecond)
	nodes, err = reg.Nodes(ctx)
	require.NoError(t, err)
	require.Empty(t, nodes)
	require.NoError(t, reg.Announce(ctx, "a", "inst-2", []byte(`{"x":5}`), ttl, 0))

	// Sessions expire too.
	require.NoError(t, reg.Assign(ctx, "a", time.Minute, "ps_03", []byte(`{}`), 100*time.Millisecond))
	sleep(150 * time.Millisecond)
	_, err = reg.Session(ctx, "ps_03")
	require.ErrorIs(t, err, ErrNoSession)
}

func TestMemoryRegistry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	reg := NewMemory(func() time.Time { return now })
	registryContract(t, reg, func(d time.Duration) { now = now.Add(d) })
}

func TestRedisRegistry(t *testing.T) {
	srv := redistest.Start(t)
	reg, err := NewRedis(srv.URL())
	require.NoError(t, err)
	defer reg.Close()
	registryContract(t, reg, time.Sleep)

	// Keys of the wrong type under our prefix are skipped, the rest
	// listed; values that are not ours are the decoder's to skip.
	ctx := context.Background()
	require.NoError(t, reg.Announce(ctx, "ok", "i", []byte(`{"x":1}`), time.Minute, 0))
	require.NoError(t, reg.rdb.HSet(ctx, "podium:node:hash", "a", "b").Err())
	require.NoError(t, reg.rdb.ZAdd(ctx, "podium:nodes", redis.Z{Score: 1e15, Member: "hash"}).Err())
	require.NoError(t, reg.rdb.Set(ctx, "podium:res:ok", "not a number", time.Minute).Err())
	nodes, err := reg.Nodes(ctx)
	require.NoError(t, err)
	ids := map[string]int64{}
	for _, n := range nodes {
		ids[n.ID] = n.Reserved
	}
	require.NotContains(t, ids, "hash")
	require.Contains(t, ids, "ok")
	require.Zero(t, ids["ok"])
}
