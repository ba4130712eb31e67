package av

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"
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

// TestMmapThreshold: large libav allocations are mapped on their own and
// go back to the kernel when freed, however many were freed before (the
// threshold no longer follows them up).
func TestMmapThreshold(t *testing.T) {
	if os.Getenv("MALLOC_MMAP_THRESHOLD_") != "" {
		t.Skip("MALLOC_MMAP_THRESHOLD_ is set: glibc's own threshold applies")
	}
	if got := mmapThresholdApplied(); got != mmapThreshold {
		t.Fatalf("mmap threshold %d, want %d", got, mmapThreshold)
	}
	// glibc serves a request from any free chunk big enough, threshold or
	// not, and the tests before this one leave such holes: check in a
	// process of its own, whose heap has none yet.
	if os.Getenv("PODIUM_MMAP_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMmapThreshold$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PODIUM_MMAP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	for range 3 { // a freed mapping would raise a moving threshold past 1 MB
		p := astiav.AllocPacket()
		if err := p.AllocPayload(1 << 20); err != nil {
			t.Fatal(err)
		}
		if m := CHeap().Mmap; m < 1<<20 {
			t.Fatalf("a 1 MB packet: %d bytes mapped, want it mapped on its own", m)
		}
		p.Free()
	}
	// 40 packets of 100 KB live at once: glibc may serve a few from the
	// arena's top chunk or a hole (it maps only what they cannot hold),
	// but with the threshold fixed most are mapped; a threshold moved
	// past 1 MB maps none.
	const n, size = 40, 100 << 10
	pkts := make([]*astiav.Packet, n)
	for i := range pkts {
		pkts[i] = astiav.AllocPacket()
		defer pkts[i].Free()
		if err := pkts[i].AllocPayload(size); err != nil {
			t.Fatal(err)
		}
	}
	if m := CHeap().Mmap; m < n*size*3/4 {
		t.Fatalf("%d packets of 100 KB after three of 1 MB: %d bytes mapped, want most of %d", n, m, n*size)
	}
}

// TestTrimCHeap: libav memory freed below live allocations stays resident
// (glibc only trims the top of an arena) until TrimCHeap hands it back;
// CHeap sees both the allocation and the free space.
func TestTrimCHeap(t *testing.T) {
	const n, size, keepEvery = 20000, 2000, 50 // 40 MB in 2 KB packets, 1 in 50 kept
	before := CHeap()
	pkts := make([]*astiav.Packet, n)
	for i := range pkts {
		pkts[i] = astiav.AllocPacket()
		if err := pkts[i].AllocPayload(size); err != nil {
			t.Fatal(err)
		}
	}
	full := CHeap()
	if grew := int64(full.InUse) - int64(before.InUse); grew < n*size*9/10 {
		t.Fatalf("C heap in use grew %d bytes for %d bytes of packets", grew, n*size)
	}
	for i, p := range pkts {
		if i%keepEvery != 0 && i != n-1 { // the last one pins the top of the heap
			p.Free()
			pkts[i] = nil
		}
	}
	holed := CHeap()
	if holed.Free < full.Free+n*size*8/10 {
		t.Fatalf("C heap free %d after freeing %d bytes (was %d)", holed.Free, n*size, full.Free)
	}
	rss := vmRSS(t)
	TrimCHeap()
	trimmed := vmRSS(t)
	t.Logf("C heap: in use %d -> %d -> %d, free %d; RSS %d -> %d kB after TrimCHeap",
		before.InUse, full.InUse, holed.InUse, holed.Free, rss, trimmed)
	if rss-trimmed < n*size/2/1024 {
		t.Fatalf("TrimCHeap gave back %d kB of %d kB freed", rss-trimmed, n*size/1024)
	}
	for _, p := range pkts {
		if p != nil {
			p.Free()
		}
	}
}

// vmRSS is the process's resident memory in kB.
func vmRSS(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
