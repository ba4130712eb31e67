package edge

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOriginsSpreadAndBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	o := newOrigins(10 * time.Second)
	o.now = func() time.Time { return now }
	list := []string{"a:1935", "b:1935"}

	// Streams spread: the first pick of each goes to the least busy.
	first := map[int]int{}
	for i := range 10 {
		k := fmt.Sprintf("live/s%d", i)
		j := o.pick(list, map[int]bool{}, -1, k)
		first[j]++
		o.busy(list[j], 1)
	}
	require.Equal(t, 5, first[0])
	require.Equal(t, 5, first[1])

	// Idle: the stream's name picks, and not always the first.
	o2 := newOrigins(10 * time.Second)
	picks := map[int]bool{}
	for i := range 20 {
		picks[o2.pick(list, map[int]bool{}, -1, fmt.Sprintf("live/x%d", i))] = true
	}
	require.Len(t, picks, 2, "never always the first")

	// A failed origin is skipped by every stream, for the backoff.
	o.failed("a:1935", errors.New("connection refused"))
	for i := range 5 {
		require.Equal(t, 1, o.pick(list, map[int]bool{}, -1, fmt.Sprintf("live/y%d", i)))
	}
	// b tried and failed too: nothing left this round.
	require.Equal(t, -1, o.pick(list, map[int]bool{1: true}, 1, "live/y"))
	// Every origin in backoff and none tried: the one that comes back first.
	o.failed("b:1935", errors.New("reset"))
	require.Equal(t, 0, o.pick(list, map[int]bool{}, -1, "live/z"))
	now = now.Add(11 * time.Second)
	require.NotEqual(t, -1, o.pick(list, map[int]bool{0: true}, 0, "live/z"))
	// prev goes last.
	o3 := newOrigins(time.Second)
	require.Equal(t, 1, o3.pick(list, map[int]bool{}, 0, "live/anything"))
	require.Equal(t, 0, o3.pick(list, map[int]bool{}, 1, "live/anything"))
}
