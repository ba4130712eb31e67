package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClusterAllocator: a master forwarding to three Podium slaves that
// share one Redis. Allocations spread over the slaves from every box; the
// URL plays; two switches give three lines; an unknown stream is 404; a
// slave killed with -9 is not handed out after 3 heartbeats; with Redis
// stopped HLS keeps moving and allocation answers (stale); Redis
// restarted empty has every box back within a heartbeat.
func TestClusterAllocator(t *testing.T) {
	const hb = time.Second
	c := startCluster(t, 3, "1s", "room101")
	rd, master, slaves := c.redis, c.master, c.slaves
	boxes := append([]*podium{master}, slaves...)
	// Every slave has HLS segments: every box can hand out every slave.
	c.waitAllReady(t, "room101")

	// 30 allocations, asked of all four boxes in turn.
	count := map[string]int{}
	perBox := map[int]int{}
	for i := range 30 {
		box := boxes[i%len(boxes)]
		code, a := allocate(t, box, "live", "room101", "")
		require.Equal(t, http.StatusOK, code, "%+v", a)
		require.Equal(t, 0, a.Code)
		require.True(t, strings.HasPrefix(a.Data.Session, "ps_"), a.Data.Session)
		require.NotEqual(t, "master", a.Data.Node, "the master serves no HLS")
		require.Regexp(t, `^http://127\.0\.0\.1:\d+/live/room101\.m3u8`, a.Data.URL)
		require.Len(t, a.Data.Alternates, 2)
		count[a.Data.Node]++
		perBox[i%len(boxes)]++
	}
	t.Logf("30 allocations: %v", count)
	require.Len(t, count, 3)
	for n, c := range count {
		require.GreaterOrEqual(t, c, 5, "node %s got %d of 30: %v", n, c, count)
	}
	require.Len(t, perBox, 4, "every box allocates")

	// podium cluster shows the registry: the four boxes, the stream.
	out, errOut, code := runPodium(t, "cluster", "--config", filepath.Join(master.Dir, "podium.yaml"))
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"master", "s1", "s2", "s3", "Line 2", "transcode/live/room101"} {
		require.Contains(t, out, want)
	}

	// The URL plays: H.264 + AAC from the slave it names.
	_, a := allocate(t, slaves[1], "live", "room101", "")
	res := probeUntil(t, a.Data.URL, 20*time.Second, "video", "audio")
	v, _ := res.stream("video")
	au, _ := res.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", au)

	// proto=flv: an HTTP-FLV URL on a slave, which plays too.
	code, f := allocate(t, master, "live", "room101", "&proto=flv")
	require.Equal(t, http.StatusOK, code, "%+v", f)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/live/room101\.flv$`, f.Data.URL)
	res = probeUntil(t, f.Data.URL, 20*time.Second, "video", "audio")
	v, _ = res.stream("video")
	require.Equal(t, "h264", v)

	// Switch twice (asked of other boxes: sessions live in Redis): three
	// different lines.
	lines := []string{a.Data.Line}
	sess := a.Data.Session
	for i, box := range []*podium{slaves[2], master} {
		code, b := switchLine(t, box, sess)
		require.Equal(t, http.StatusOK, code, "%+v", b)
		require.Equal(t, sess, b.Data.Session)
		require.NotContains(t, lines, b.Data.Line, "switch %d", i+1)
		lines = append(lines, b.Data.Line)
	}
	slices.Sort(lines)
	require.Equal(t, []string{"Line 1", "Line 2", "Line 3"}, lines)
	// Unknown sessions and streams: 404 {"code":404}.
	code, b := switchLine(t, master, "ps_0123456789abcdef01234567")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, 404, b.Code)
	code, b = allocate(t, slaves[0], "live", "nosuchclass", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, 404, b.Code)
	code, _ = allocate(t, slaves[0], "live", "..%2Fetc", "")
	require.Equal(t, http.StatusBadRequest, code, "path tricks are refused")

	// kill -9 slave 3: after 3 heartbeats it is never handed out.
	slaves[2].kill()
	killed := time.Now()
	time.Sleep(3 * hb)
	for i := range 30 {
		code, a := allocate(t, boxes[i%3], "live", "room101", "")
		require.Equal(t, http.StatusOK, code)
		require.NotEqual(t, "s3", a.Data.Node, "s3 handed out %v after kill -9", time.Since(killed).Round(time.Millisecond))
	}

	// Redis stops: HLS keeps moving on the slaves, allocation answers.
	admin := newAPI(t, master, adminPassword(t, master))
	playlist := fmt.Sprintf("http://127.0.0.1:%d/live/room101.m3u8", slaves[0].HTTP)
	newest := func() uint64 {
		p, body, err := hlsPlaylist(playlist)
		require.NoError(t, err, "%s", body)
		return p.SeqNo + uint64(len(listed(p)))
	}
	before := newest()
	rd.Stop()
	time.Sleep(2 * hb)
	for _, box := range boxes[:3] {
		code, a := allocate(t, box, "live", "room101", "")
		require.Equal(t, http.StatusOK, code, "%+v", a)
		require.True(t, a.Data.Stale, "an answer from the last view says so")
		require.Contains(t, []string{"s1", "s2"}, a.Data.Node)
	}
	require.Eventually(t, func() bool { return newest() >= before+3 }, 15*time.Second, 200*time.Millisecond,
		"HLS stopped moving without Redis")
	for _, box := range boxes[:3] {
		require.Equal(t, 1, strings.Count(box.Logs.String(), "cluster registry unreachable"), "one line per state change:\n%s", box.Logs)
	}

	// Redis back, empty: every live box re-announces within a heartbeat
	// (timed by each box's own log line, not by this test's polling: an
	// admin request costs a password hash on a loaded machine).
	require.NoError(t, rd.Start())
	back := time.Now()
	require.Eventually(t, func() bool {
		ids, stale := clusterNodes(t, admin)
		return !stale && slices.Equal(ids, []string{"master", "s1", "s2"})
	}, 10*time.Second, 100*time.Millisecond)
	for _, box := range boxes[:3] {
		at := logTime(t, box, "cluster registry back")
		t.Logf("%s announced again %v after Redis restarted empty (heartbeat %v)", nodeOf(box), at.Sub(back).Round(time.Millisecond), hb)
		require.Less(t, at.Sub(back), hb)
	}
	code, a = allocate(t, master, "live", "room101", "")
	require.Equal(t, http.StatusOK, code)
	require.False(t, a.Data.Stale)
}

// TestClusterCheck: podium check names a bad cluster key (exit 2);
// podium cluster says when Redis cannot be reached (exit 1) and that an
// in-memory registry lives only in the running box.
func TestClusterCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	_, errOut, code := runPodium(t, "check", "--config", write("bad.yaml", "cluster: {redis: \"http://x:1\", heartbeat: 5ms}\n"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "cluster.redis")
	require.Contains(t, errOut, "cluster.heartbeat")
	out, errOut, code := runPodium(t, "check", "--config", write("ok.yaml", "cluster: {node: a, max_viewers: 800}\n"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "max_viewers: 800")
	require.Contains(t, out, "heartbeat: 2s")

	out, _, code = runPodium(t, "cluster", "--config", write("mem.yaml", "cluster: {node: a}\n"))
	require.Equal(t, 0, code)
	require.Contains(t, out, "in-memory")
	_, errOut, code = runPodium(t, "cluster", "--config", write("down.yaml", fmt.Sprintf("cluster: {redis: \"redis://127.0.0.1:%d/0\"}\n", freePort(t))))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "connection refused")
}
