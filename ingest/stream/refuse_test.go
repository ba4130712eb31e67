package stream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRefuseEndsWaits: a source that gives up on a demand ends every wait
// for that key at once with its error, and only for that key.
func TestRefuseEndsWaits(t *testing.T) {
	h := NewHub(Options{}, nil)
	defer h.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, name := range []string{"s1", "s1", "s1", "s2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := h.Subscribe(ctx, key(name), ClientInfo{Protocol: "test"}, 3*time.Second)
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return h.Waiting(key("s1")) == 3 && h.Waiting(key("s2")) == 1 },
		2*time.Second, 5*time.Millisecond)
	start := time.Now()
	require.Equal(t, 3, h.Refuse(key("s1"), fmt.Errorf("no origin has it: %w", ErrNotFound)))
	for range 3 {
		err := <-errs
		require.ErrorIs(t, err, ErrNotFound)
		require.Contains(t, err.Error(), "no origin has it")
	}
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, 0, h.Waiting(key("s1")))
	require.Equal(t, 1, h.Waiting(key("s2")), "another key's wait goes on")
	require.Equal(t, 0, h.Refuse(key("s1"), ErrNotFound))

	p, err := h.Publish(key("s2"), ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, <-errs)
	wg.Wait()
	p.Close()
	require.Equal(t, 0, h.Waiting(key("s2")))
}
