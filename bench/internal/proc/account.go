package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Category is where a profiled server spent one perf sample. The
// categories are the same for a C event loop (nginx-rtmp) and a Go server
// (Podium), so the two can be compared line by line: the kernel work of
// the socket calls, the waiting for the next event, and what is left — the
// server's own work.
type Category int

const (
	CatRecv      Category = iota // recv(2)/read(2): the kernel's receive path
	CatSend                      // send(2)/write(2)/writev(2): the kernel's send path, with the loopback peer's receive
	CatWait                      // epoll_wait, futex, nanosleep: blocking, and the context switches it costs
	CatPreempt                   // switched out on the way back to user space (the loopback peer a send woke took the CPU)
	CatScheduler                 // Go's scheduler in user space (findRunnable, park, wake a thread): nginx has none
	CatMemory                    // allocation and garbage collection
	CatSyscall                   // any other system call
	CatWork                      // the rest: parsing, fan-out, timers, page faults
	numCategories
)

var categoryNames = [numCategories]string{
	"recv (kernel)", "send (kernel)", "wait: epoll/futex", "preempted", "Go scheduler", "alloc + GC", "other syscalls", "work: parse, fan-out",
}

func (c Category) String() string { return categoryNames[c] }

// syscallCategory maps a kernel syscall entry symbol to its category.
func syscallCategory(sym string) (Category, bool) {
	name, ok := strings.CutPrefix(sym, "__x64_sys_")
	if !ok {
		return 0, false
	}
	switch name {
	case "recvfrom", "read", "readv", "recvmsg", "recvmmsg":
		return CatRecv, true
	case "sendto", "write", "writev", "sendmsg", "sendmmsg":
		return CatSend, true
	case "epoll_wait", "epoll_pwait", "epoll_pwait2", "futex", "nanosleep", "clock_nanosleep", "sched_yield", "poll", "ppoll", "select", "pselect6":
		return CatWait, true
	}
	return CatSyscall, true
}

var schedulerFrames = map[string]bool{
	"runtime.findRunnable": true, "runtime.schedule": true, "runtime.park_m": true, "runtime.mcall": true,
	"runtime.stopm": true, "runtime.startm": true, "runtime.wakep": true, "runtime.ready": true,
	"runtime.goready": true, "runtime.sysmon": true, "runtime.gopark": true, "runtime.goexit0": true,
	"runtime.injectglist": true, "runtime.netpoll": true,
}

var memoryFrames = map[string]bool{
	"runtime.mallocgc": true, "runtime.gcBgMarkWorker": true, "runtime.bgsweep": true,
	"runtime.bgscavenge": true, "runtime.gcAssistAlloc": true, "runtime.gcStart": true,
	"runtime.markrootSpans": true, "runtime.gcDrain": true,
	"malloc": true, "free": true, "cfree": true, "realloc": true, "calloc": true,
}

// classify returns the category of one sample's call chain (leaf first).
// A system call anywhere in the chain decides (a Go frame under it is the
// caller, not the cost); then a switch on the way back to user space; then
// the Go scheduler; then memory; else work.
func classify(frames []string) Category {
	for _, f := range frames {
		if c, ok := syscallCategory(f); ok {
			return c
		}
	}
	for _, f := range frames {
		if f == "exit_to_user_mode_loop" || f == "irqentry_exit_to_user_mode" {
			return CatPreempt
		}
	}
	for _, f := range frames {
		if schedulerFrames[f] {
			return CatScheduler
		}
	}
	for _, f := range frames {
		if memoryFrames[f] {
			return CatMemory
		}
	}
	return CatWork
}

// Breakdown is a perf recording's samples by category.
type Breakdown struct {
	Samples [numCategories]int
	Total   int
}

// parseScript reads `perf script` output (a header line per sample, then
// its call chain, one frame a line: address, symbol+offset, (dso)).
func parseScript(r io.Reader) (Breakdown, error) {
	var b Breakdown
	var frames []string
	flush := func() {
		if len(frames) > 0 {
			b.Samples[classify(frames)]++
			b.Total++
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	inSample := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			inSample = false
		case line[0] == ' ' || line[0] == '\t':
			if !inSample {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			sym := f[1]
			if i := strings.LastIndex(sym, "+0x"); i > 0 {
				sym = sym[:i]
			}
			frames = append(frames, sym)
		default: // a sample's header line
			flush()
			inSample = true
		}
	}
	flush()
	return b, sc.Err()
}

// Account reads the recording's samples by category (nil: none).
func (p *Perf) Account() (*Breakdown, error) {
	if p == nil {
		return nil, nil
	}
	p.Wait()
	out, err := exec.Command("perf", "script", "-i", p.out, "-F", "comm,tid,ip,sym").Output()
	if err != nil {
		return nil, fmt.Errorf("perf script %s: %w", p.out, err)
	}
	b, err := parseScript(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("perf script %s: %w", p.out, err)
	}
	return &b, nil
}

// PrintAccounts prints where each recorded server spent its CPU, by
// category, in % of one core per unit (a stream, or a stream·destination),
// and the difference of the last server from the first. Nothing when a
// recording is nil.
func PrintAccounts(w io.Writer, names []string, perfs []*Perf, window float64, units int, unit string) {
	var bs []*Breakdown
	for i, p := range perfs {
		b, err := p.Account()
		if err != nil {
			fmt.Fprintf(w, "\nno CPU accounting for %s: %v\n", names[i], err)
			return
		}
		if b == nil {
			return // not recorded (no -perf, or no perf installed)
		}
		bs = append(bs, b)
	}
	if len(bs) == 0 || window <= 0 || units <= 0 {
		return
	}
	pct := func(n int) float64 { return float64(n) / PerfFreq / window * 100 / float64(units) }
	fmt.Fprintf(w, "\nwhere the CPU goes (perf, %d Hz, %.0f s; %% of one core per %s; perf's own overhead included, the same for each):\n", PerfFreq, window, unit)
	fmt.Fprintf(w, "  %-22s", "category")
	for _, n := range names {
		fmt.Fprintf(w, "  %12s", n)
	}
	fmt.Fprintf(w, "  %12s\n", "difference")
	row := func(label string, get func(*Breakdown) int) {
		fmt.Fprintf(w, "  %-22s", label)
		for _, b := range bs {
			fmt.Fprintf(w, "  %12.4f", pct(get(b)))
		}
		fmt.Fprintf(w, "  %+12.4f\n", pct(get(bs[len(bs)-1]))-pct(get(bs[0])))
	}
	for c := range numCategories {
		row(c.String(), func(b *Breakdown) int { return b.Samples[c] })
	}
	row("total", func(b *Breakdown) int { return b.Total })
}
