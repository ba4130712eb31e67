package ui

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Podium ships for.
const clockTicks = 100

// HostStats is the box's CPU, memory and network, read from /proc.
type HostStats struct {
	CPUs int `json:"cpus"`
	// CPUPercent is the whole box's busy share over the last tick (0-100).
	CPUPercent float64 `json:"cpu_percent"`
	Load1      float64 `json:"load_1m"`
	Load5      float64 `json:"load_5m"`
	Load15     float64 `json:"load_15m"`
	// Memory in KiB, as /proc/meminfo gives it.
	MemTotalKB     uint64  `json:"mem_ram_total_kbyte"`
	MemUsedKB      uint64  `json:"mem_ram_kbyte"` // total - available
	MemPercent     float64 `json:"mem_ram_percent"`
	SwapUsedKB     uint64  `json:"mem_swap_kbyte"`
	UptimeSec      float64 `json:"uptime"`
	NetRecvBytes   uint64  `json:"net_recv_bytes"` // every interface but lo
	NetSendBytes   uint64  `json:"net_send_bytes"`
	NetRecvKbps    float64 `json:"net_recv_kbps"`
	NetSendKbps    float64 `json:"net_send_kbps"`
	NetSampleMs    int64   `json:"net_sample_time"`
	Interfaces     []NIC   `json:"interfaces"`
	ProcCPUPercent float64 `json:"-"` // Podium itself, in percent of one core
	ProcRSSKB      uint64  `json:"-"`
	ProcCPUSeconds float64 `json:"-"`
}

// NIC is one network interface's counters.
type NIC struct {
	Name      string  `json:"name"`
	RecvBytes uint64  `json:"recv_bytes"`
	SendBytes uint64  `json:"send_bytes"`
	RecvKbps  float64 `json:"recv_kbps"`
	SendKbps  float64 `json:"send_kbps"`
}

// hostSampler reads /proc once a tick and keeps the rates.
type hostSampler struct {
	root string

	mu       sync.Mutex
	cur      HostStats
	lastAt   time.Time
	lastCPU  cpuTimes
	lastProc float64 // process CPU seconds
	lastNIC  map[string]NIC
}

func newHostSampler(root string) *hostSampler {
	return &hostSampler{root: root, lastNIC: map[string]NIC{}}
}

func (h *hostSampler) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join(h.root, name))
	if err != nil {
		return nil // not Linux, or a container without /proc: the panel stays empty
	}
	return b
}

func (h *hostSampler) sample(now time.Time) {
	cpu := parseCPU(h.read("stat"))
	mem := parseMeminfo(h.read("meminfo"))
	nics := parseNetDev(h.read("net/dev"))
	load := strings.Fields(string(h.read("loadavg")))
	up := strings.Fields(string(h.read("uptime")))
	procCPU := parseSelfStat(h.read("self/stat"))
	rss := parseStatusKB(h.read("self/status"), "VmRSS:")

	h.mu.Lock()
	defer h.mu.Unlock()
	s := HostStats{CPUs: runtime.NumCPU(), NetSampleMs: now.UnixMilli(), ProcRSSKB: rss, ProcCPUSeconds: procCPU}
	if len(load) >= 3 {
		s.Load1, _ = strconv.ParseFloat(load[0], 64)
		s.Load5, _ = strconv.ParseFloat(load[1], 64)
		s.Load15, _ = strconv.ParseFloat(load[2], 64)
	}
	if len(up) >= 1 {
		s.UptimeSec, _ = strconv.ParseFloat(up[0], 64)
	}
	s.MemTotalKB = mem["MemTotal"]
	if avail, ok := mem["MemAvailable"]; ok && s.MemTotalKB >= avail {
		s.MemUsedKB = s.MemTotalKB - avail
	}
	if s.MemTotalKB > 0 {
		s.MemPercent = round2(100 * float64(s.MemUsedKB) / float64(s.MemTotalKB))
	}
	if st, sf := mem["SwapTotal"], mem["SwapFree"]; st >= sf {
		s.SwapUsedKB = st - sf
	}
	dt := now.Sub(h.lastAt).Seconds()
	have := !h.lastAt.IsZero() && dt > 0
	if have {
		if busy, total := cpu.busy()-h.lastCPU.busy(), cpu.total()-h.lastCPU.total(); total > 0 && cpu.total() >= h.lastCPU.total() {
			s.CPUPercent = round2(100 * float64(busy) / float64(total))
		}
		if procCPU >= h.lastProc {
			s.ProcCPUPercent = round2(100 * (procCPU - h.lastProc) / dt)
		}
	}
	last := make(map[string]NIC, len(nics))
	for _, n := range nics {
		if prev, ok := h.lastNIC[n.Name]; ok && have && n.RecvBytes >= prev.RecvBytes && n.SendBytes >= prev.SendBytes {
			n.RecvKbps = round2(float64(n.RecvBytes-prev.RecvBytes) * 8 / 1000 / dt)
			n.SendKbps = round2(float64(n.SendBytes-prev.SendBytes) * 8 / 1000 / dt)
		}
		last[n.Name] = n
		s.Interfaces = append(s.Interfaces, n)
		if n.Name != "lo" {
			s.NetRecvBytes += n.RecvBytes
			s.NetSendBytes += n.SendBytes
			s.NetRecvKbps += n.RecvKbps
			s.NetSendKbps += n.SendKbps
		}
	}
	s.NetRecvKbps, s.NetSendKbps = round2(s.NetRecvKbps), round2(s.NetSendKbps)
	h.cur, h.lastAt, h.lastCPU, h.lastProc, h.lastNIC = s, now, cpu, procCPU, last
}

// stats returns the last sample.
func (h *hostSampler) stats() HostStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.cur
	s.Interfaces = append([]NIC(nil), h.cur.Interfaces...)
	return s
}

// cpuTimes is the "cpu" line of /proc/stat, in ticks.
type cpuTimes []uint64

func (c cpuTimes) total() uint64 {
	var t uint64
	for i, v := range c {
		if i < 8 { // user..steal; guest time is already in user
			t += v
		}
	}
	return t
}

func (c cpuTimes) busy() uint64 {
	if len(c) < 5 {
		return 0
	}
	idle := c[3] + c[4] // idle + iowait
	return c.total() - idle
}

func parseCPU(b []byte) cpuTimes {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return nil
	}
	out := make(cpuTimes, 0, len(f)-1)
	for _, x := range f[1:] {
		v, _ := strconv.ParseUint(x, 10, 64)
		out = append(out, v)
	}
	return out
}

// parseMeminfo returns /proc/meminfo's values in KiB by name.
func parseMeminfo(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// parseNetDev reads /proc/net/dev: receive bytes is the first column,
// transmit bytes the ninth.
func parseNetDev(b []byte) []NIC {
	var out []NIC
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		rx, err1 := strconv.ParseUint(f[0], 10, 64)
		tx, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, NIC{Name: strings.TrimSpace(name), RecvBytes: rx, SendBytes: tx})
	}
	return out
}

// parseSelfStat returns utime+stime of /proc/self/stat in seconds. The
// command name may hold spaces and parentheses: fields start after the
// last ')'.
func parseSelfStat(b []byte) float64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / clockTicks
}

// parseStatusKB returns a "Name: N kB" value of /proc/self/status.
func parseStatusKB(b []byte, name string) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == name {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func round2(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}
