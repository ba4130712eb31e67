package stream

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A reader's queue grows as packets wait (order kept across the grows), is
// still bounded by QueuePackets, and a drained long queue is let go.
func TestReaderRingGrowsAndShrinks(t *testing.T) {
	opts := DefaultOptions()
	opts.QueuePackets = 600
	h := NewHub(opts, nil)
	pub, err := h.Publish(key("s1"), ClientInfo{})
	require.NoError(t, err)
	r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	require.NoError(t, err)
	require.Empty(t, r.ring, "no queue until a packet waits")

	for i := range 500 {
		pub.WritePacket(vpkt(i, i == 0))
	}
	require.Len(t, r.ring, 512, "doubled from 16 as packets waited")
	got, err := r.ReadBatch(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, got, 500)
	for i, p := range got {
		require.Equal(t, vpkt(i, i == 0).DTS, p.DTS, "packet %d in order", i)
	}
	require.Empty(t, r.ring, "a drained queue over keepRing is let go")

	// Over QueuePackets: the backlog is dropped, as before the ring grew
	// on demand.
	for i := 500; i < 500+opts.QueuePackets+1; i++ {
		pub.WritePacket(vpkt(i, i == 500))
	}
	require.LessOrEqual(t, len(r.ring), opts.QueuePackets)
	require.Equal(t, uint64(opts.QueuePackets+1), r.Stats().Dropped, "the queue and the packet that overflowed it")
}
