package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// edgeYAML is an edge vhost (__defaultVhost__, no transcode) in front of
// origins, with extra cluster keys.
func edgeYAML(origins []string, extra string) string {
	q := make([]string, len(origins))
	for i, o := range origins {
		q[i] = fmt.Sprintf("%q", o)
	}
	return fmt.Sprintf(`vhosts:
  - name: __defaultVhost__
    cluster:
      mode: remote
      origin: [%s]
%s
    hls: {enabled: true, fragment: 1s, window: 6}
`, strings.Join(q, ", "), extra)
}

// plainYAML is a box whose __defaultVhost__ takes streams as published
// (no transcode), with an optional forward.
func plainYAML(forwardTo ...string) string {
	y := "vhosts:\n  - name: __defaultVhost__\n"
	if len(forwardTo) > 0 {
		q := make([]string, len(forwardTo))
		for i, d := range forwardTo {
			q[i] = fmt.Sprintf("%q", d)
		}
		y += fmt.Sprintf("    forward: {destinations: [%s]}\n", strings.Join(q, ", "))
	}
	return y
}

func (p *podium) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.RTMP) }

// edgePulling returns the origin of the edge's last "edge pulling" log
// line, or "".
func edgePulling(edge *podium) string {
	m := regexp.MustCompile(`msg="edge pulling".*origin=(\S+)`).FindAllStringSubmatch(edge.Logs.String(), -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// player is an ffmpeg RTMP (or HTTP-FLV) player copying the stream into
// an FLV file, flushed per packet, whose growth the test watches.
type player struct {
	cmd  *exec.Cmd
	out  string
	logs *lockedBuffer
	done chan struct{}

	mu     sync.Mutex
	size   int64
	grewAt time.Time
	stalls []time.Duration // every pause in the file's growth longer than 100 ms, from start
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startPlayer(t *testing.T, url string) *player {
	t.Helper()
	pl := &player{out: filepath.Join(t.TempDir(), "out.flv"), logs: &lockedBuffer{}, done: make(chan struct{}),
		stop: make(chan struct{})}
	pl.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "warning", "-rw_timeout", "30000000",
		"-i", url, "-c", "copy", "-flush_packets", "1", "-f", "flv", "-y", pl.out)
	pl.cmd.Stdout, pl.cmd.Stderr = pl.logs, pl.logs
	require.NoError(t, pl.cmd.Start())
	go func() { _ = pl.cmd.Wait(); close(pl.done) }()
	pl.wg.Add(1)
	go pl.watch()
	t.Cleanup(func() { pl.quit() })
	return pl
}

func (pl *player) watch() {
	defer pl.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case now := <-tick.C:
			fi, err := os.Stat(pl.out)
			if err != nil {
				continue
			}
			pl.mu.Lock()
			if fi.Size() != pl.size {
				if !pl.grewAt.IsZero() {
					if d := now.Sub(pl.grewAt); d > 100*time.Millisecond {
						pl.stalls = append(pl.stalls, d)
					}
				}
				pl.size, pl.grewAt = fi.Size(), now
			}
			pl.mu.Unlock()
		}
	}
}

// grown is the file size and when it last grew.
func (pl *player) grown() (int64, time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.size, pl.grewAt
}

// longestStall is the longest pause in growth since from (the current
// one included).
func (pl *player) longestStallSince(from time.Time) time.Duration {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var longest time.Duration
	for _, s := range pl.stalls {
		longest = max(longest, s)
	}
	last := pl.grewAt
	if from.After(last) {
		last = from
	}
	if cur := time.Since(last); cur > longest {
		longest = cur
	}
	return longest
}

func (pl *player) resetStalls() {
	pl.mu.Lock()
	pl.stalls = nil
	pl.mu.Unlock()
}

func (pl *player) running() bool {
	select {
	case <-pl.done:
		return false
	default:
		return true
	}
}

// quit ends ffmpeg as a user would ('q' via SIGINT), so the file is
// complete.
func (pl *player) quit() {
	select {
	case <-pl.stop:
	default:
		close(pl.stop)
	}
	pl.wg.Wait()
	if pl.running() {
		_ = pl.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-pl.done:
		case <-time.After(5 * time.Second):
			_ = pl.cmd.Process.Kill()
			<-pl.done
		}
	}
}

// requireMonotonicFile reads every packet's DTS of an FLV file with
// ffprobe and requires each stream's to increase.
func requireMonotonicFile(t *testing.T, path string) (packets map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-of", "json", "-show_entries",
		"packet=codec_type,dts", "-show_packets", path).Output()
	require.NoError(t, err)
	var res struct {
		Packets []struct {
			CodecType string `json:"codec_type"`
			DTS       *int64 `json:"dts"`
		} `json:"packets"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	last := map[string]int64{}
	packets = map[string]int{}
	for i, p := range res.Packets {
		require.NotNil(t, p.DTS, "packet %d has no dts", i)
		if prev, ok := last[p.CodecType]; ok {
			require.Greater(t, *p.DTS, prev, "packet %d (%s) goes back in time", i, p.CodecType)
		}
		last[p.CodecType] = *p.DTS
		packets[p.CodecType]++
	}
	return packets
}

// nonMonotonic matches ffmpeg's complaints about timestamps.
var nonMonotonic = regexp.MustCompile(`(?i)non[- ]monoton|invalid dts|out of order`)
