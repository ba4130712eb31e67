package av

//#include <malloc.h>
//#include <stdlib.h>
//
//static int podium_arena_max_set;
//
//__attribute__((constructor)) static void podium_arena_max(void) {
//	if (getenv("MALLOC_ARENA_MAX") == NULL && mallopt(M_ARENA_MAX, 2) == 1) {
//		podium_arena_max_set = 2;
//	}
//}
//
//static int podium_arena_max_applied(void) { return podium_arena_max_set; }
import "C"

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

// arenaMaxApplied is what the constructor applied (0: MALLOC_ARENA_MAX was
// set, or mallopt refused).
func arenaMaxApplied() int { return int(C.podium_arena_max_applied()) }
