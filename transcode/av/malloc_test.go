package av

import (
	"os"
	"testing"
)

// TestArenaMax: without MALLOC_ARENA_MAX, the process caps glibc's malloc
// arenas at arenaMax (mallopt accepted it, at load time).
func TestArenaMax(t *testing.T) {
	if os.Getenv("MALLOC_ARENA_MAX") != "" {
		if arenaMaxApplied() != 0 {
			t.Fatalf("MALLOC_ARENA_MAX is set, yet init applied %d", arenaMaxApplied())
		}
		return
	}
	if got := arenaMaxApplied(); got != arenaMax {
		t.Fatalf("malloc arenas capped at %d, want %d", got, arenaMax)
	}
}
