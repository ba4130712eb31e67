package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/transcode"
	"github.com/podiumlive/podium/ui"
	"github.com/podiumlive/podium/ui/uitest"
)

// artifactsDir keeps the browser tests' screenshots (gitignored).
const artifactsDir = "artifacts"

// dashboardDriver is a running dashboard.mjs: its JSON-line events, and
// its stdin for the test's cues.
type dashboardDriver struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
	stderr *lockedBuffer
	done   chan error
}

// startDashboard runs e2e/browser/dashboard.mjs. Node, Chromium and the
// npm packages are required: the test fails, never skips, without them.
func startDashboard(t *testing.T, args ...string) *dashboardDriver {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is required (make test installs it)")
	_, err = os.Stat("/usr/bin/chromium")
	require.NoError(t, err, "/usr/bin/chromium is required (packaging/deps-debian.sh installs it)")
	_, err = os.Stat(filepath.Join(browserDir, "node_modules/playwright-core/package.json"))
	require.NoError(t, err, "e2e/browser/node_modules/playwright-core missing: run make browser-deps")
	d := &dashboardDriver{t: t, events: make(chan map[string]any, 16), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(node, append([]string{"dashboard.mjs"}, args...)...)
	d.cmd.Dir = browserDir
	d.cmd.Stderr = d.stderr
	d.stdin, err = d.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := d.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, d.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				d.events <- ev
			}
		}
		close(d.events)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		for range d.events { // drain until the reader goroutine ends
		}
	})
	return d
}

// next waits for the named event; an "error" event fails the test.
func (d *dashboardDriver) next(name string, timeout time.Duration) map[string]any {
	d.t.Helper()
	select {
	case ev, ok := <-d.events:
		require.True(d.t, ok, "dashboard.mjs ended before %q: %s", name, d.stderr)
		require.NotEqual(d.t, "error", ev["event"], "dashboard.mjs: %v\n%s", ev, d.stderr)
		require.Equal(d.t, name, ev["event"], "%v", ev)
		return ev
	case <-time.After(timeout):
		d.t.Fatalf("no %q from dashboard.mjs within %s: %s", name, timeout, d.stderr)
	}
	return nil
}

func (d *dashboardDriver) cue(s string) {
	d.t.Helper()
	_, err := io.WriteString(d.stdin, s+"\n")
	require.NoError(d.t, err)
}

// TestDashboardInBrowser: headless Chromium logs in (a wrong password
// first), sees an H.264 + Speex publish appear within 2 s with its codecs
// in and out, sees its forward go from failing to "forwarding" when the
// slave comes up, without a reload; the HLS preview plays; a screenshot
// is kept; the Kick button disconnects ffmpeg and the row goes.
func TestDashboardInBrowser(t *testing.T) {
	slavePort := freePort(t) // nothing listens yet: the forward fails
	master := startPodium(t, fmt.Sprintf(`vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode}
  - name: transcode
    forward: {destinations: ["127.0.0.1:%d"]}
    hls: {enabled: true}
`, slavePort))
	password := adminPassword(t, master)
	require.NoError(t, os.MkdirAll(artifactsDir, 0o755))
	shot, err := filepath.Abs(filepath.Join(artifactsDir, "dashboard.png"))
	require.NoError(t, err)
	_ = os.Remove(shot)
	base := fmt.Sprintf("http://127.0.0.1:%d", master.HTTP)
	d := startDashboard(t, "flow", base, password, shot)

	login := d.next("login", 60*time.Second)
	require.Equal(t, "Wrong password.", login["wrongMsg"])
	require.Equal(t, true, login["httpOnly"])
	require.Equal(t, "Strict", login["sameSite"])
	d.next("ready", 30*time.Second)

	pub := startPublisher(t, speexFixture(t), master.RTMPURL("live/cam1"))
	d.cue("published")
	st := d.next("stream", 30*time.Second)
	t.Logf("stream row shown %v ms after ffmpeg started; codecs %q; forward %v", st["streamMs"], st["codecs"], st["firstState"])
	require.Less(t, st["streamMs"].(float64), 2000.0, "the stream must show within 2 s of publishing")
	require.Equal(t, "h264+speex → h264+aac", st["codecs"])
	require.Equal(t, "rtmp 127.0.0.1", st["publisher"])
	require.Contains(t, st["transcode"], "copy")
	require.Contains(t, []any{"connecting", "backoff"}, st["firstState"])

	slave := startPodiumPorts(t, slavePort, freePort(t), 0, "")
	d.cue("slave-up")
	fw := d.next("forwarding", 60*time.Second)
	t.Logf("forward states seen without reload: %v (forwarding %v ms after the slave came up)", fw["states"], fw["ms"])
	states := fw["states"].([]any)
	require.Equal(t, "forwarding", states[len(states)-1])
	require.Greater(t, len(states), 1, "the change was not seen live: %v", states)
	require.NotEqual(t, "forwarding", states[0])
	require.Equal(t, true, fw["noReload"])
	require.Contains(t, fw["detail"], "Forwards")
	require.Contains(t, fw["detail"], fmt.Sprintf("127.0.0.1:%d", slavePort))
	require.Contains(t, fw["detail"], "aac")
	require.Contains(t, fw["hw"], "libx264")
	require.Contains(t, fw["host"], "CPUs")

	// The API agrees, and the slave really gets the stream.
	admin := newAPI(t, master, password)
	out := admin.stream("transcode/live/cam1")
	require.NotNil(t, out)
	require.Len(t, out.Forwards, 1)
	require.Equal(t, "forwarding", out.Forwards[0].State)
	require.Positive(t, out.Forwards[0].Reconnects)
	require.Contains(t, out.Forwards[0].LastError, "connection refused")
	probeUntil(t, slave.RTMPURL("live/cam1"), 20*time.Second, "video", "audio")
	m := admin.metrics()
	fwd := fmt.Sprintf(`stream="transcode/live/cam1",destination="%s"`, out.Forwards[0].Destination)
	require.Equal(t, 1.0, m[`podium_forward_state{`+fwd+`,state="forwarding"}`])
	require.Positive(t, m[`podium_forward_reconnects_total{`+fwd+`}`])
	require.Positive(t, m[`podium_forward_bytes_total{`+fwd+`}`])

	pv := d.next("preview", 45*time.Second)
	t.Logf("HLS preview playing: %v", pv)
	require.Greater(t, pv["currentTime"].(float64), 1.0)
	require.Equal(t, "/live/cam1.m3u8", pv["msg"])
	d.next("screenshot", 30*time.Second)
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(10_000))
	t.Logf("screenshot: %s", shot)

	d.cue("kick")
	kicked := d.next("kicked", 30*time.Second)
	t.Logf("row gone %v ms after Kick", kicked["ms"])
	require.Empty(t, kicked["pageErrors"])
	select {
	case <-pub.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ffmpeg still publishing after the Kick button")
	}
	require.NoError(t, <-d.done, "dashboard.mjs: %s", d.stderr)
}

// TestDashboardFirstPaint200Streams measures the dashboard in Chromium
// with 200 encoder streams live (400 rows with their transcoded twins,
// 400 forwards), served in-process by the ui package on a hub fed at
// 25 fps: first paint, first contentful paint and every row drawn.
// Targets: first paint < 1 s (asserted, with slack for -race and a busy
// machine: 3 s), rows drawn logged.
func TestDashboardFirstPaint200Streams(t *testing.T) {
	const n = 200
	hub, trans, fwds := uitest.LiveHub(t, n)
	u, err := ui.New(ui.Deps{
		Hub:        hub,
		Transcodes: func() []transcode.Stats { return slices.Clone(trans) },
		Forwards:   func() []forward.Stats { return slices.Clone(fwds) },
		HLSURL:     func(k stream.Key) string { return "/" + k.App + "/" + k.Name + ".m3u8" },
	}, ui.Options{AdminPassword: "measure-me", DataDir: t.TempDir(), Notice: io.Discard}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); hub.Run(ctx) }()
	go func() { defer wg.Done(); u.Run(ctx) }()
	srv := httptest.NewServer(u.Handler())
	t.Cleanup(func() { cancel(); wg.Wait(); srv.CloseClientConnections(); srv.Close() })

	require.NoError(t, os.MkdirAll(artifactsDir, 0o755))
	shot, err := filepath.Abs(filepath.Join(artifactsDir, "dashboard-200.png"))
	require.NoError(t, err)
	d := startDashboard(t, "measure", srv.URL, "measure-me", shot, fmt.Sprint(2*n))
	d.next("login", 60*time.Second)
	ev := d.next("measure", 120*time.Second)
	require.Empty(t, ev["pageErrors"])
	runs := ev["runs"].([]any)
	require.Len(t, runs, 3)
	var worstFP float64
	for i, r := range runs {
		m := r.(map[string]any)
		require.Equal(t, float64(2*n), m["rows"])
		t.Logf("load %d: first paint %.0f ms, first contentful paint %.0f ms, DOMContentLoaded %.0f ms, %v rows drawn at %.0f ms; a live update parses and redraws in %.1f ms",
			i+1, m["firstPaint"], m["firstContentfulPaint"], m["domContentLoaded"], m["rows"], m["rowsMs"], m["updateRenderMs"])
		require.Positive(t, m["firstContentfulPaint"], "no paint timing")
		worstFP = max(worstFP, m["firstContentfulPaint"].(float64))
	}
	t.Logf("screenshot: %s", shot)
	require.Less(t, worstFP, 3000.0, "first contentful paint (target 1 s)")
	require.NoError(t, <-d.done, "dashboard.mjs: %s", d.stderr)
}
