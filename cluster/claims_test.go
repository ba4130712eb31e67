package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// claimsContract is the claims behaviour both registries must have.
func claimsContract(t *testing.T, reg Registry, sleep func(time.Duration)) {
	ctx := context.Background()
	ttl := 300 * time.Millisecond
	const k1, k2, k3 = "__defaultVhost__/live/room1", "transcode/live/room1", "__defaultVhost__/live/room2"

	got, err := reg.Claim(ctx, "masters", "m1", []string{k1, k2}, ttl)
	require.NoError(t, err)
	require.Equal(t, map[string]string{k1: "m1", k2: "m1"}, got)
	// Another member asking for a held class gets the holder, not the
	// claim; a free class is its own.
	got, err = reg.Claim(ctx, "masters", "m2", []string{k1, k3}, ttl)
	require.NoError(t, err)
	require.Equal(t, map[string]string{k1: "m1", k3: "m2"}, got)
	// Groups are separate name spaces.
	got, err = reg.Claim(ctx, "other", "x1", []string{k1}, ttl)
	require.NoError(t, err)
	require.Equal(t, map[string]string{k1: "x1"}, got)

	owners, err := reg.Owners(ctx, []string{"masters", "other", "empty"})
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]string{
		"masters": {k1: "m1", k2: "m1", k3: "m2"},
		"other":   {k1: "x1"},
		"empty":   {},
	}, owners)

	// The holder's refresh keeps its claim past the first ttl; the
	// others lapse.
	sleep(ttl * 2 / 3)
	_, err = reg.Claim(ctx, "masters", "m1", []string{k1}, ttl)
	require.NoError(t, err)
	sleep(ttl * 2 / 3)
	owners, err = reg.Owners(ctx, []string{"masters"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{k1: "m1"}, owners["masters"], "k2 and k3 expired, k1 was refreshed")
	got, err = reg.Claim(ctx, "masters", "m2", []string{k2}, ttl)
	require.NoError(t, err)
	require.Equal(t, map[string]string{k2: "m2"}, got, "a lapsed claim is free")

	// Release is compare-and-delete: m2 cannot release m1's claim.
	require.NoError(t, reg.Release(ctx, "masters", "m2", []string{k1, k2}))
	owners, err = reg.Owners(ctx, []string{"masters"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{k1: "m1"}, owners["masters"])
	require.NoError(t, reg.Release(ctx, "masters", "m1", []string{k1}))
	got, err = reg.Claim(ctx, "masters", "m2", []string{k1}, ttl)
	require.NoError(t, err)
	require.Equal(t, "m2", got[k1], "a released class is free at once")
	require.NoError(t, reg.Release(ctx, "masters", "m2", nil))
	got, err = reg.Claim(ctx, "masters", "m2", nil, ttl)
	require.NoError(t, err)
	require.Empty(t, got)

	// Two members racing for the same classes: exactly one wins each.
	keys := []string{"v/live/a", "v/live/b", "v/live/c", "v/live/d"}
	var wg sync.WaitGroup
	results := make([]map[string]string, 8)
	for i := range results {
		wg.Go(func() {
			node := []string{"m1", "m2"}[i%2]
			r, err := reg.Claim(ctx, "race", node, keys, time.Minute)
			if err == nil {
				results[i] = r
			}
		})
	}
	wg.Wait()
	owners, err = reg.Owners(ctx, []string{"race"})
	require.NoError(t, err)
	require.Len(t, owners["race"], len(keys))
	for i, r := range results {
		require.Len(t, r, len(keys), "claim %d", i)
		for _, k := range keys {
			require.Equal(t, owners["race"][k], r[k], "every caller sees the one winner of %s", k)
		}
	}
}

func TestMemoryClaims(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	reg := NewMemory(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	claimsContract(t, reg, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() })
}

func TestRedisClaims(t *testing.T) {
	srv := redistest.Start(t)
	reg, err := NewRedis(srv.URL())
	require.NoError(t, err)
	defer reg.Close()
	claimsContract(t, reg, time.Sleep)

	// A key of the wrong type under a claim name is nobody's claim and is
	// left alone; the group's other claims still read.
	ctx := context.Background()
	require.NoError(t, reg.rdb.HSet(ctx, claimPrefix("g")+"v/live/h", "a", "b").Err())
	got, err := reg.Claim(ctx, "g", "m1", []string{"v/live/h", "v/live/ok"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"v/live/ok": "m1"}, got)
	require.NoError(t, reg.rdb.Set(ctx, claimIndex("bad"), "not a zset", time.Minute).Err())
	owners, err := reg.Owners(ctx, []string{"g", "bad"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"v/live/ok": "m1"}, owners["g"])
	require.Empty(t, owners["bad"])
}
