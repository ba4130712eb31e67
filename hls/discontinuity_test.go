package hls

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMarkedDiscontinuity: a keyframe marked Discontinuity (an edge's
// failover to another origin) starts a new period: its segment carries
// #EXT-X-DISCONTINUITY, with the same tracks and a monotonic timeline.
func TestMarkedDiscontinuity(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 20, Variant: VariantMPEGTS}, Options{})
	all := readFLV(t, avFixture(t))
	second := shift(all, 6*time.Second)
	for i := range second {
		if second[i].IsVideoKey() {
			second[i].Discontinuity = true
			break
		}
	}
	e.publish("s", append(all, second...))
	segs := segments(e.playlist("s"))
	discs := 0
	for _, s := range segs {
		if s.Discontinuity {
			discs++
		}
	}
	require.Equal(t, 1, discs)
	require.GreaterOrEqual(t, len(segs), 9)
}
