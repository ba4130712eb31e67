package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hookRecorder is a real HTTP hook server: each path answers its own way
// (/allow "0", /deny {"code":1}, /garbage HTML, /hang never, /play what
// the test set) and every body is recorded.
type hookRecorder struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []map[string]any
	changed  chan struct{} // closed and replaced on every body
	play     atomic.Value  // string: /play's answer
	hangDone atomic.Int64  // unix nanos when a /hang request ended
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{changed: make(chan struct{})}
	h.play.Store("0")
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m == nil {
			m = map[string]any{}
		}
		m["path"] = r.URL.Path
		m["query"] = r.URL.RawQuery
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
		switch r.URL.Path {
		case "/allow", "/notify":
			_, _ = io.WriteString(w, `{"code":0}`)
		case "/deny":
			_, _ = io.WriteString(w, `{"code":1,"msg":"not you"}`)
		case "/garbage":
			_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
		case "/play":
			_, _ = io.WriteString(w, h.play.Load().(string))
		case "/hang":
			<-r.Context().Done() // Podium gives up first (5 s)
			h.hangDone.Store(time.Now().UnixNano())
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// wait returns the first body that matches, waiting up to d.
func (h *hookRecorder) wait(t *testing.T, d time.Duration, match func(m map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(d)
	for {
		h.mu.Lock()
		for _, m := range h.bodies {
			if match(m) {
				h.mu.Unlock()
				return m
			}
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("no matching hook call within %s; got %v", d, h.bodies)
			return nil
		}
	}
}

func hookIs(action, vhost, stream string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["action"] == action && m["vhost"] == vhost && m["stream"] == stream
	}
}

// exitWithin waits for a publisher that should be refused to exit and
// returns how long it took; it fails the test if it is still running.
func exitWithin(t *testing.T, cmd *exec.Cmd, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "a refused publisher exits with an error")
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("refused publisher still running after %s", d)
		return 0
	}
}

// publishAt is publish, with the time it started.
func publishAt(t *testing.T, file, url string) (*exec.Cmd, time.Time) {
	return publish(t, file, url), time.Now()
}

// probeFails asserts that a player is refused (quickly: no play_wait).
func probeFails(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := ffprobe(ctx, url)
	require.Error(t, err, "play %s should be refused", url)
}

const hookSecret = "tok-SEKRIT-42"

func TestHooksAndAccess(t *testing.T) {
	h := newHookRecorder(t)
	u := func(path string) string { return fmt.Sprintf("%q", h.URL+path+"?token="+hookSecret) }
	cfg := fmt.Sprintf(`rtmp: {play_wait: 2s}
vhosts:
  - name: __defaultVhost__
  - name: open
    hooks:
      on_publish: [%s]
      on_unpublish: [%s]
      on_play: [%s]
      on_stop: [%s]
  - name: deny
    hooks: {on_publish: [%s]}
  - name: garbage
    hooks: {on_publish: [%s]}
  - name: hang
    hooks: {on_publish: [%s]}
  - name: keyed
    security: {publish_key: "K3Y-SEKRIT", play_deny: ["127.0.0.0/8", "::1"]}
  - name: lan
    security: {publish_allow: ["10.0.0.0/8", "fd00::/8"]}
`, u("/allow"), u("/notify"), u("/play"), u("/notify"), u("/deny"), u("/garbage"), u("/hang"))
	p := startPodium(t, cfg)
	file := speexFixture(t)
	url := func(stream, vhost string) string { return p.RTMPURL("live/" + stream + "?vhost=" + vhost) }

	// A hook that never answers: the publish is refused after 5 s, and in
	// the meantime another client publishes without waiting for it.
	hang, hangStart := publishAt(t, file, url("h1", "hang"))
	h.wait(t, 15*time.Second, hookIs("on_publish", "hang", "h1"))
	hangExited := make(chan time.Duration, 1)
	go func() {
		done := make(chan error, 1)
		go func() { done <- hang.Wait() }()
		select {
		case <-done:
			hangExited <- time.Since(hangStart)
		case <-time.After(30 * time.Second):
			hangExited <- -1
		}
	}()

	t.Run("allowed publish and play, then on_stop and on_unpublish", func(t *testing.T) {
		pub := publish(t, file, url("s1", "open"))
		got := h.wait(t, 15*time.Second, hookIs("on_publish", "open", "s1"))
		require.Equal(t, "/allow", got["path"])
		require.Equal(t, "token="+hookSecret, got["query"], "the hook gets its URL as configured")
		require.Equal(t, "127.0.0.1", got["ip"])
		require.Equal(t, "live", got["app"])
		require.NotEmpty(t, got["client_id"])
		require.NotEmpty(t, got["server_id"])
		require.Contains(t, got["param"], "vhost=open")
		require.True(t, strings.HasPrefix(got["param"].(string), "?"), "SRS sends param with its ?")
		require.Contains(t, got["tcUrl"], fmt.Sprintf("rtmp://127.0.0.1:%d/live", p.RTMP))
		// The hanging hook holds up nobody else: this publish was accepted
		// (its on_publish answered) while the hung one still waits.
		require.Zero(t, h.hangDone.Load(), "the hung on_publish ended before another client's publish went through")

		probeUntil(t, url("s1", "open"), 15*time.Second, "video", "audio")
		play := h.wait(t, 5*time.Second, hookIs("on_play", "open", "s1"))
		stop := h.wait(t, 10*time.Second, hookIs("on_stop", "open", "s1"))
		require.Equal(t, play["client_id"], stop["client_id"])
		require.Equal(t, "127.0.0.1", stop["ip"])
		require.Equal(t, "live", stop["app"])
		require.NotEqual(t, got["client_id"], stop["client_id"])

		// on_play gates playing.
		h.play.Store(`{"code":403}`)
		probeFails(t, url("s1", "open"))
		h.play.Store("0")

		require.NoError(t, pub.Process.Kill())
		_ = pub.Wait()
		unpub := h.wait(t, 10*time.Second, hookIs("on_unpublish", "open", "s1"))
		require.Equal(t, got["client_id"], unpub["client_id"])
		require.Equal(t, "127.0.0.1", unpub["ip"])
		require.Equal(t, "live", unpub["app"])
		require.Equal(t, got["param"], unpub["param"])
	})

	t.Run("denied", func(t *testing.T) {
		exitWithin(t, publish(t, file, url("d1", "deny")), 15*time.Second)
		require.Contains(t, p.Logs.String(), `code \"1\"`)
	})

	t.Run("garbage answer", func(t *testing.T) {
		exitWithin(t, publish(t, file, url("g1", "garbage")), 15*time.Second)
		require.Contains(t, p.Logs.String(), "answer is not 0 or a JSON object")
	})

	t.Run("publish key", func(t *testing.T) {
		exitWithin(t, publish(t, file, url("k1", "keyed")+"&key=WRONG-SEKRIT"), 15*time.Second)
		exitWithin(t, publish(t, file, url("k1", "keyed")), 15*time.Second)
		require.Contains(t, p.Logs.String(), "publish key wrong")
		require.Contains(t, p.Logs.String(), "publish key missing")
		publish(t, file, url("k1", "keyed")+"&key=K3Y-SEKRIT")
		// play_deny covers 127.0.0.1: the stream is live but refused to us.
		require.Eventually(t, func() bool { return strings.Contains(p.Logs.String(), "stream=keyed/live/k1") },
			15*time.Second, 100*time.Millisecond)
		probeFails(t, url("k1", "keyed"))
		require.Contains(t, p.Logs.String(), "matches play_deny 127.0.0.0/8")
	})

	t.Run("ip not in publish_allow", func(t *testing.T) {
		exitWithin(t, publish(t, file, url("l1", "lan")), 15*time.Second)
		require.Contains(t, p.Logs.String(), "127.0.0.1 not in publish_allow")
	})

	t.Run("hook timeout", func(t *testing.T) {
		took := <-hangExited
		require.Positive(t, took, "publisher behind a hanging hook never refused")
		// 5 s hook timeout, plus ffmpeg's start and a loaded machine's margin.
		require.Greater(t, took, 4*time.Second)
		require.Less(t, took, 15*time.Second)
		require.Contains(t, p.Logs.String(), "Client.Timeout exceeded")
	})

	p.Stop(t)
	logs := p.Logs.String()
	require.Contains(t, logs, `msg="rtmp access denied"`)
	for _, secret := range []string{hookSecret, "K3Y-SEKRIT", "WRONG-SEKRIT"} {
		require.NotContains(t, logs, secret, "a secret reached Podium's log")
	}
	require.Contains(t, logs, "token=xxx", "hooks are named in the log, redacted")
}
