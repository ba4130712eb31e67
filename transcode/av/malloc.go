package av

//#include <malloc.h>
//#include <stdlib.h>
//
//static int podium_arena_max_set, podium_mmap_threshold_set;
//
//__attribute__((constructor)) static void podium_malloc_options(void) {
//	if (getenv("MALLOC_ARENA_MAX") == NULL && mallopt(M_ARENA_MAX, 2) == 1) {
//		podium_arena_max_set = 2;
//	}
//	if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL && mallopt(M_MMAP_THRESHOLD, 64 * 1024) == 1) {
//		podium_mmap_threshold_set = 64 * 1024;
//	}
//}
//
//static int podium_arena_max_applied(void) { return podium_arena_max_set; }
//static int podium_mmap_threshold_applied(void) { return podium_mmap_threshold_set; }
import "C"

import "github.com/podiumlive/podium/internal/avstat"

// arenaMax: the constructor caps glibc's malloc arenas at 2 unless MALLOC_ARENA_MAX says
// otherwise. glibc gives each thread that mallocs its own arena (up to 8
// per core) and keeps what is freed in it; libav's codec and filter
// threads spread a transcoding box's C memory over a dozen arenas that
// fill with fragments (a 1-hour soak: 15 arenas, 45.6 MB, 21 MB of it free
// and not returnable). Capped at 2, a 1000-cycle churn plateaued ~30 MB
// lower (docs/reliability.md, bench/churn). The systemd unit sets the
// variable; this covers every other way Podium is started (Docker, make
// run, a shell). A C constructor, not a Go init: glibc fixes its arena
// limit when it first needs a new arena, which threads the Go runtime
// starts before package init already did (an init's mallopt left 6).
const arenaMax = 2

// mmapThreshold: the constructor also fixes glibc's mmap threshold at 64
// KiB (unless MALLOC_MMAP_THRESHOLD_ says otherwise). glibc's default
// threshold moves: each freed mapping raises it to that size, so after the
// first pipeline closes, codec contexts, encoder tables and frame pools
// come from the arenas instead, and every pipeline that closes leaves
// holes there that the small per-packet allocations split until their
// pages can never be given back (a soak with one publisher churning a
// minute: the arenas grew 25 -> 32 MB in 30 minutes, 3,500 free fragments
// of 2 KB on average, with nothing mapped). Fixed, anything of 64 KiB or
// more is mapped on its own and unmapped when freed, at the cost of a
// syscall pair per such allocation (pipeline setup, a video keyframe).
const mmapThreshold = 64 << 10

// mmapThresholdApplied is what the constructor applied (0: the variable
// was set, or mallopt refused).
func mmapThresholdApplied() int { return int(C.podium_mmap_threshold_applied()) }

// arenaMaxApplied is what the constructor applied (0: MALLOC_ARENA_MAX was
// set, or mallopt refused).
func arenaMaxApplied() int { return int(C.podium_arena_max_applied()) }

// CHeap reports glibc's malloc heap (mallinfo2, every arena): what libav
// holds, and what is free inside the arenas but still resident, which is
// where a transcoding box's RSS grows when it grows.
func CHeap() avstat.CHeap {
	m := C.mallinfo2()
	return avstat.CHeap{
		Arena:  uint64(m.arena),
		Mmap:   uint64(m.hblkhd),
		InUse:  uint64(m.uordblks) + uint64(m.hblkhd),
		Free:   uint64(m.fordblks),
		Chunks: uint64(m.ordblks),
	}
}

// TrimCHeap hands the free pages inside glibc's arenas back to the
// kernel (malloc_trim(0): the top of each heap and, since glibc 2.8,
// every free page in the middle, by MADV_DONTNEED). glibc trims the top
// of an arena by itself, but the holes a closed pipeline leaves below
// live allocations stay resident until something reuses them; with one
// transcode starting and stopping a minute, RSS crept up for an hour
// (docs/reliability.md, Soak). Called after a pipeline closes: it walks
// the free lists under each arena's lock, well under a millisecond here.
func TrimCHeap() { C.malloc_trim(0) }
