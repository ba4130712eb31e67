package proc

import (
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Perf is a perf(1) recording of one process over a measurement window.
// A nil *Perf (no -perf, or no perf installed) does nothing.
type Perf struct {
	child *Child
	out   string
}

// PerfFreq is the sampling rate of StartPerf's recordings, in Hz.
const PerfFreq = 999

// StartPerf records pids (call graphs, PerfFreq) into out for d, as a
// process of g. It returns nil when out is empty, and nil with a warning
// when perf is not installed: the bench then runs without a profile.
func StartPerf(g *Group, out string, d time.Duration, pids ...int) (*Perf, error) {
	if out == "" {
		return nil, nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		slog.Warn("-perf: perf not installed, skipping the profile")
		return nil, nil
	}
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	cmd := exec.Command("perf", "record", "-q", "-F", strconv.Itoa(PerfFreq), "-g", "-p", strings.Join(list, ","),
		"-o", out, "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	logs := NewTail(4096)
	cmd.Stdout, cmd.Stderr = logs, logs
	c, err := g.Start("perf", cmd)
	if err != nil {
		return nil, err
	}
	return &Perf{child: c, out: out}, nil
}

// StartPerfVsNginx records podium (pid) into out and nginx-rtmp (every
// process of group nginxGroup) into out+".nginx", over the same d, for
// PrintAccounts. Both nil when out is empty or perf is not installed.
func StartPerfVsNginx(g *Group, out string, d time.Duration, pid, nginxGroup int) (pod, ngx *Perf, err error) {
	if pod, err = StartPerf(g, out, d, pid); err != nil || pod == nil {
		return nil, nil, err
	}
	u, err := GroupUsage(nginxGroup)
	if err != nil {
		return nil, nil, fmt.Errorf("nginx-rtmp: %w", err)
	}
	if ngx, err = StartPerf(g, out+".nginx", d, u.PIDs...); err != nil {
		return nil, nil, err
	}
	return pod, ngx, nil
}

// Wait waits (15 s at most) for perf to write its recording.
func (p *Perf) Wait() {
	if p == nil {
		return
	}
	select {
	case <-p.child.Done:
	case <-time.After(15 * time.Second):
	}
}

// Print waits for the recording like Wait, then prints its top symbols
// (self time, >= 0.7%).
func (p *Perf) Print() {
	if p == nil {
		return
	}
	p.Wait()
	out, err := exec.Command("perf", "report", "-i", p.out, "--stdio", "--no-children",
		"--sort", "symbol", "--percent-limit", "0.7", "-g", "none").CombinedOutput()
	if err != nil {
		slog.Warn("perf report failed", "err", err, "out", string(out))
		return
	}
	fmt.Println("\npodium perf profile (self time, symbols >= 0.7%):")
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Println(line)
	}
}
