package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// BenchmarkPlay is one allocation (read the registry, choose, count it,
// store the session) on the memory registry and on a real Redis.
func BenchmarkPlay(b *testing.B) {
	run := func(b *testing.B, reg Registry) {
		c := New(reg, Config{Node: "alloc", PublicURL: "http://a", Heartbeat: 2 * time.Second}, func() Local { return Local{} }, nil)
		require.NoError(b, c.Beat(context.Background()))
		for _, id := range []string{"n1", "n2", "n3", "n4"} {
			n := New(reg, Config{Node: id, PublicURL: "http://" + id, Serve: true, Heartbeat: 2 * time.Second}, func() Local { return Local{Streams: readyStream()} }, nil)
			require.NoError(b, n.Beat(context.Background()))
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Play(context.Background(), room()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemory(nil)) })
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		reg, err := NewRedis(srv.URL())
		require.NoError(b, err)
		defer reg.Close()
		run(b, reg)
	})
}
