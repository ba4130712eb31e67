package ratelog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCounter(t *testing.T) {
	var c Counter
	t0 := time.Unix(1000, 0)
	n, ok := c.Tick(t0, 10*time.Second)
	require.True(t, ok)
	require.Equal(t, 1, n)
	for i := range 5 {
		_, ok = c.Tick(t0.Add(time.Duration(i+1)*time.Second), 10*time.Second)
		require.False(t, ok)
	}
	n, ok = c.Tick(t0.Add(10*time.Second), 10*time.Second)
	require.True(t, ok)
	require.Equal(t, 6, n, "the five held back and this one")
}
