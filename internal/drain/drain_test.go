package drain

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitCancelsOnlyAfterTheBound: a consumer that ends by itself is not
// cancelled early; one that does not is cancelled after the bound.
func TestWaitCancelsOnlyAfterTheBound(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { time.Sleep(50 * time.Millisecond); wg.Done() }()
	cancelled := false
	Wait(&wg, time.Second, func() { cancelled = true })
	require.True(t, cancelled, "cancel is always called, after the wait")

	stop := make(chan struct{})
	wg.Add(1)
	go func() { <-stop; wg.Done() }()
	start := time.Now()
	Wait(&wg, 100*time.Millisecond, func() { close(stop) })
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second)
}
