package av

//#include <malloc.h>
import "C"

import "os"

// arenaMax is how many glibc malloc arenas the process may use unless
// MALLOC_ARENA_MAX says otherwise. glibc gives each thread that mallocs
// its own arena (up to 8 per core) and keeps what is freed in it; libav's
// codec and filter threads spread a transcoding box's C memory over a
// dozen arenas that only ever grow. Capped at 2, a 1000-cycle churn
// plateaued ~30 MB lower (docs/reliability.md, bench/churn). The systemd
// unit sets the variable; this covers every other way Podium is started
// (Docker, make run, a shell).
const arenaMax = 2

// arenaMaxSet is what init applied (0: MALLOC_ARENA_MAX was set, or
// mallopt refused).
var arenaMaxSet int

func init() {
	if os.Getenv("MALLOC_ARENA_MAX") != "" {
		return
	}
	if C.mallopt(C.M_ARENA_MAX, arenaMax) == 1 {
		arenaMaxSet = arenaMax
	}
}
