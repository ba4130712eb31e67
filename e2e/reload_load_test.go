package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rewriteConfig replaces p's config body (what startPodium's extraYAML
// was), keeping its listen addresses and data directory.
func rewriteConfig(t *testing.T, p *podium, extraYAML string) {
	t.Helper()
	cfg := fmt.Sprintf("listen: {rtmp: \"127.0.0.1:%d\", http: \"127.0.0.1:%d\"}\ndata_dir: %s\n%s", p.RTMP, p.HTTP, p.Dir, extraYAML)
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "podium.yaml"), []byte(cfg), 0o644))
}

// TestReloadUnderLoad: 16 streams publish to a master that forwards them
// to a slave, with a player on each; 100 SIGHUPs, each reloading a config
// in which only another vhost changed (its forward destination comes and
// goes, its hooks change). No publisher, player or forward of the 16 is
// interrupted: every player's video keeps coming (no gap over 1 s), and
// the slave sees each stream published exactly once.
func TestReloadUnderLoad(t *testing.T) {
	const streams, reloads = 16, 100
	s1 := startPodium(t, plainSlave)
	s2 := startPodium(t, plainSlave)
	d1, d2 := fmt.Sprintf("127.0.0.1:%d", s1.RTMP), fmt.Sprintf("127.0.0.1:%d", s2.RTMP)
	cfg := func(i int) string {
		other := fmt.Sprintf("  - name: other\n    forward: {destinations: [%q]}\n", d2)
		if i%2 == 1 {
			other = fmt.Sprintf("  - name: other\n    hooks: {on_play: [\"http://127.0.0.1:1/r%d\"]}\n", i)
		}
		return passthroughMaster(d1) + other
	}
	master := startPodium(t, cfg(0))
	tags := flvTags(t, speexFixture(t))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, streams)
	for i := range streams {
		wg.Go(func() {
			errs[i] = goPublish(ctx, master.RTMPURL(fmt.Sprintf("live/r%d", i)), tags, true, 0)
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	ws := make([]*watcher, streams)
	for i := range streams {
		probeUntil(t, s1.RTMPURL(fmt.Sprintf("live/r%d", i)), 30*time.Second, "video")
		ws[i] = watch(t, master.RTMPURL(fmt.Sprintf("live/r%d", i)))
	}
	time.Sleep(3 * time.Second) // past the GOP-cache bursts
	for _, w := range ws {
		w.reset()
	}

	start := time.Now()
	for i := 1; i <= reloads; i++ {
		rewriteConfig(t, master, cfg(i))
		require.NoError(t, master.cmd.Process.Signal(syscall.SIGHUP))
		// Wait for this reload before the next: a signal sent while one is
		// pending would be merged with it.
		require.Eventually(t, func() bool {
			return strings.Count(master.Logs.String(), "config reloaded") >= i
		}, 10*time.Second, 5*time.Millisecond, "reload %d", i)
	}
	took := time.Since(start)
	time.Sleep(time.Second)

	var worst time.Duration
	for i, w := range ws {
		st := w.stats()
		require.False(t, st.Ended, "player %d was cut: %v", i, st.Err)
		require.Greater(t, st.Videos, int(took.Seconds())*20, "player %d stopped receiving", i)
		require.Less(t, st.MaxGap, time.Second, "player %d: video gap", i)
		worst = max(worst, st.MaxGap)
	}
	for i := range streams {
		require.NoError(t, errs[i], "publisher %d", i)
	}
	s1Logs := s1.Logs.String()
	for i := range streams {
		require.Equal(t, 1, logLines(s1Logs, "rtmp publish", fmt.Sprintf("stream=__defaultVhost__/live/r%d ", i)),
			"stream r%d's forward to slave 1 was restarted", i)
	}
	t.Logf("%d reloads in %v while %d streams played; largest video gap at a player %v", reloads,
		took.Round(time.Millisecond), streams, worst.Round(time.Millisecond))
	master.Alive(t)
}

// logLines counts the log lines that contain every one of parts.
func logLines(logs string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
