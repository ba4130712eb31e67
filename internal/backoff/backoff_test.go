package backoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second, Jitter: 0.25}
	prev := time.Duration(0)
	for i := 0; i < 10; i++ {
		d := b.Next()
		require.LessOrEqual(t, d, 30*time.Second)
		require.GreaterOrEqual(t, d, 750*time.Millisecond)
		if i < 4 {
			require.Greater(t, d, prev*5/4-1)
		}
		prev = d
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), 1250*time.Millisecond)
}

// TestFastRetries: the RTSP pull's schedule (1 s six times, then doubling
// to 30 s, ±20%).
func TestFastRetries(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second, Fast: 6, Jitter: 0.2}
	want := map[int]time.Duration{
		1: time.Second, 6: time.Second, 7: 2 * time.Second, 8: 4 * time.Second, 10: 16 * time.Second, 11: 30 * time.Second, 40: 30 * time.Second,
	}
	for fails := 1; fails <= 40; fails++ {
		got := b.Next()
		if w, ok := want[fails]; ok {
			require.GreaterOrEqual(t, got, w*8/10, "fails %d", fails)
			require.LessOrEqual(t, got, w*12/10, "fails %d", fails)
		}
	}
}
