package ui

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Captured from a Debian 12 box.
const (
	procStat1 = "cpu  1000 0 500 8000 500 0 0 0 0 0\ncpu0 500 0 250 4000 250 0 0 0 0 0\n"
	procStat2 = "cpu  1300 0 600 8500 600 0 0 0 0 0\ncpu0 650 0 300 4250 300 0 0 0 0 0\n"
	meminfo   = `MemTotal:       24000000 kB
MemFree:        20000000 kB
MemAvailable:   18000000 kB
Buffers:          100000 kB
SwapTotal:       1000000 kB
SwapFree:         750000 kB
`
	netDev1 = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 5000000   50000    0    0    0     0          0         0  5000000   50000    0    0    0     0       0          0
  eth0: 1000000    9000    0    0    0     0          0         0   200000    1500    0    0    0     0       0          0
`
	netDev2 = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9000000   90000    0    0    0     0          0         0  9000000   90000    0    0    0     0       0          0
  eth0: 1250000    9500    0    0    0     0          0         0   325000    1700    0    0    0     0       0          0
`
	selfStat1 = "4242 (podium (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615\n"
	selfStat2 = "4242 (podium (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 200 100 0 0 20 0 12 0 100 1000000 2000 18446744073709551615\n"
	status    = "Name:\tpodium\nVmPeak:\t  500000 kB\nVmRSS:\t   81234 kB\nThreads:\t12\n"
)

func writeProc(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

func TestHostSamplerRates(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, map[string]string{
		"stat": procStat1, "meminfo": meminfo, "net/dev": netDev1, "loadavg": "0.50 0.40 0.30 1/200 4242\n",
		"uptime": "12345.67 20000.00\n", "self/stat": selfStat1, "self/status": status,
	})
	h := newHostSampler(root)
	t0 := time.Now()
	h.sample(t0)
	first := h.stats()
	require.Zero(t, first.CPUPercent, "no rate from one reading")
	require.Equal(t, uint64(24000000), first.MemTotalKB)
	require.Equal(t, uint64(6000000), first.MemUsedKB)
	require.Equal(t, 25.0, first.MemPercent)
	require.Equal(t, uint64(250000), first.SwapUsedKB)
	require.Equal(t, 0.5, first.Load1)
	require.Equal(t, 0.3, first.Load15)
	require.Equal(t, 12345.67, first.UptimeSec)
	require.Equal(t, uint64(1000000), first.NetRecvBytes, "lo is not the network")
	require.Equal(t, uint64(81234), first.ProcRSSKB)
	require.Equal(t, 2.0, first.ProcCPUSeconds)

	writeProc(t, root, map[string]string{"stat": procStat2, "net/dev": netDev2, "self/stat": selfStat2})
	h.sample(t0.Add(time.Second))
	s := h.stats()
	// busy +400 of +1000 ticks.
	require.Equal(t, 40.0, s.CPUPercent)
	// +250000 B in, +125000 B out, in one second.
	require.Equal(t, 2000.0, s.NetRecvKbps)
	require.Equal(t, 1000.0, s.NetSendKbps)
	// +100 ticks of process time in one second: one core.
	require.Equal(t, 100.0, s.ProcCPUPercent)
	require.Len(t, s.Interfaces, 2)
}

func TestHostSamplerWithoutProc(t *testing.T) {
	h := newHostSampler(filepath.Join(t.TempDir(), "missing"))
	h.sample(time.Now())
	h.sample(time.Now().Add(time.Second))
	s := h.stats()
	require.Zero(t, s.MemTotalKB)
	require.Zero(t, s.CPUPercent)
}

func TestParsersOnGarbage(t *testing.T) {
	for _, b := range []string{"", "cpu", "cpu a b c d", "\x00\xff", "cpu  1 2"} {
		_ = parseCPU([]byte(b)).busy()
		_ = parseMeminfo([]byte(b))
		_ = parseNetDev([]byte(b))
		_ = parseSelfStat([]byte(b))
		_ = parseStatusKB([]byte(b), "VmRSS:")
	}
	require.Zero(t, parseSelfStat([]byte("1 (x) S 1")))
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"plain text":                        "plain text",
		"key=abc&x=1":                       "key=xxx&x=1",
		"app=live&Token=abc":                "app=live&Token=xxx",
		"monkey=1":                          "monkey=1",
		"rtmp://user:pw@host/app?key=k":     "rtmp://xxx@host/app?key=xxx",
		"dial rtmp://a:b@h:1935/x: refused": "dial rtmp://xxx@h:1935/x: refused",
		"post http://h/hook?secret=s&sign=t failed": "post http://h/hook?secret=xxx&sign=xxx failed",
		"user@example.com":                          "user@example.com",
	} {
		require.Equal(t, want, scrub(in), in)
	}
}
