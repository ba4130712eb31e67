// Package proc runs and measures the benchmarks' Child processes: process
// groups, CPU and memory from /proc, free ports, and a clean stop.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Group starts every Child process of the bench in its own process group and
// stops them all, group by group, on exit (also after SIGINT/SIGTERM).
type Group struct {
	mu      sync.Mutex
	closed  bool
	running []*Child
}

// Child is one started process; done is closed once it has been waited for.
type Child struct {
	Name string
	Cmd  *exec.Cmd
	Done chan struct{}
	Err  error // valid after done
}

// Start runs cmd in a new process group. The Child also gets SIGKILL if the
// bench itself dies without cleaning up (Pdeathsig).
func (p *Group) Start(name string, cmd *exec.Cmd) (*Child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("shutting down")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{Name: name, Cmd: cmd, Done: make(chan struct{})}
	go func() {
		c.Err = cmd.Wait()
		close(c.Done)
	}()
	p.running = append(p.running, c)
	return c, nil
}

// Alive reports whether the Child has not exited yet.
func (c *Child) Alive() bool {
	select {
	case <-c.Done:
		return false
	default:
		return true
	}
}

// StopAll sends SIGTERM to every process group, waits up to grace, then
// SIGKILLs the groups still there. No process is started after it.
func (p *Group) StopAll(grace time.Duration) {
	p.mu.Lock()
	p.closed = true
	list := p.running
	p.running = nil
	p.mu.Unlock()
	for _, c := range list {
		if c.Alive() {
			_ = syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(grace)
	for _, c := range list {
		select {
		case <-c.Done:
		case <-deadline:
		}
	}
	for _, c := range list {
		if c.Alive() {
			_ = syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGKILL)
			<-c.Done
		}
	}
}

// Tail keeps the last max bytes written to it (a Child's stderr).
type Tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// FreePorts reserves n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitListen dials addr until it answers, the Child exits, or timeout.
func WaitListen(ctx context.Context, c *Child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if !c.Alive() {
			return fmt.Errorf("%s exited before listening on %s: %v", c.Name, addr, c.Err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s: %w", c.Name, addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Usage is the CPU time (utime+stime, in clock ticks) and resident memory
// of every live process in one process group.
type Usage struct {
	Ticks int64
	RSS   int64 // bytes
	Procs int
	PIDs  []int
}

// GroupUsage sums /proc/PID/stat and /proc/PID/status over every process
// whose process group is pgid (nginx: master and workers; podium: itself).
func GroupUsage(pgid int) (Usage, error) {
	var u Usage
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return u, fmt.Errorf("read /proc: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		// Fields after the command name, which may hold spaces and ')'.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0]=state f[1]=ppid f[2]=pgrp ... f[11]=utime f[12]=stime
		if len(f) < 13 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g != pgid {
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return u, fmt.Errorf("parse /proc/%d/stat: %q", pid, s)
		}
		u.Ticks += ut + st
		u.RSS += VmRSS(pid)
		u.Procs++
		u.PIDs = append(u.PIDs, pid)
	}
	if u.Procs == 0 {
		return u, fmt.Errorf("no live process in group %d", pgid)
	}
	return u, nil
}

// VmRSS is /proc/PID/status VmRSS in bytes (0 when unreadable).
func VmRSS(pid int) int64 { return statusBytes(pid, "VmRSS:") }

// RssAnon is /proc/PID/status RssAnon in bytes: heap and stacks, not
// mapped files (0 when unreadable).
func RssAnon(pid int) int64 { return statusBytes(pid, "RssAnon:") }

// statusBytes is the kB field key of /proc/PID/status in bytes (0 when
// unreadable).
func statusBytes(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// GroupPss sums /proc/PID/smaps_rollup Pss (shared pages split between
// the processes that map them) over the process group pgid, in bytes; 0
// where unreadable.
func GroupPss(pgid int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				sum += kb << 10
			}
		}
	}
	return sum
}

// MachineCPU is the busy and total jiffies of all CPUs (/proc/stat "cpu").
func MachineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc/stat: %q", line)
		}
		if i >= 8 { // guest, guest_nice are already in user, nice
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// ClockTicks is sysconf(_SC_CLK_TCK) via getconf; 100 on Linux.
func ClockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}
