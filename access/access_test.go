package access

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
)

func guardFor(vhosts ...configs.Vhost) *Guard {
	return New(&configs.Config{Vhosts: vhosts}, hooks.New(3*time.Second, nil), nil)
}

func TestNilGuardAllowsEverything(t *testing.T) {
	var g *Guard
	require.NoError(t, g.Publish(context.Background(), Request{IP: "1.2.3.4"}))
	require.NoError(t, g.Play(context.Background(), Request{}))
	g.Unpublished(Request{})
	g.Stopped(Request{})
	g.Wait()
}

func TestIPLists(t *testing.T) {
	g := guardFor(
		configs.Vhost{Name: "v", Security: &configs.Security{
			PublishAllow: []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"},
			PublishDeny:  []string{"10.6.0.0/16", "2001:db8:bad::1"},
			PlayDeny:     []string{"203.0.113.0/24"},
		}},
		configs.Vhost{Name: "open"},
		configs.Vhost{Name: "v6only", Security: &configs.Security{PlayAllow: []string{"::1"}}},
	)
	cases := []struct {
		vhost, ip     string
		publish, play bool
	}{
		{"v", "10.1.2.3", true, true},
		{"v", "10.6.9.9", false, true}, // deny wins over allow
		{"v", "192.168.1.7", true, true},
		{"v", "192.168.1.8", false, true}, // not in a non-empty allow list
		{"v", "::ffff:10.1.2.3", true, true},
		{"v", "10.1.2.3:51234", true, true},
		{"v", "[2001:db8::5]:1935", true, true},
		{"v", "2001:db8::5", true, true},
		{"v", "2001:db8:bad::1", false, true},
		{"v", "fe80::1%eth0", false, true},
		{"v", "172.16.3.4", true, true}, // mapped CIDR matches plain IPv4
		{"v", "203.0.113.9", false, false},
		{"v", "", false, false}, // no address: a list applies, fail closed
		{"v", "not-an-ip", false, false},
		{"open", "203.0.113.9", true, true},
		{"unconfigured", "203.0.113.9", true, true},
		{"v6only", "::1", true, true},
		{"v6only", "127.0.0.1", true, false},
	}
	for _, c := range cases {
		r := Request{Vhost: c.vhost, IP: c.ip, App: "live", Stream: "s"}
		errP := g.Publish(context.Background(), r)
		errS := g.Play(context.Background(), r)
		require.Equal(t, c.publish, errP == nil, "publish %s %s: %v", c.vhost, c.ip, errP)
		require.Equal(t, c.play, errS == nil, "play %s %s: %v", c.vhost, c.ip, errS)
		for _, err := range []error{errP, errS} {
			if err != nil {
				require.ErrorIs(t, err, ErrDenied)
				require.Contains(t, ClientMessage(err), ReasonIPDenied)
			}
		}
	}
}

func TestPublishKey(t *testing.T) {
	g := guardFor(configs.Vhost{Name: "v", Security: &configs.Security{PublishKey: "s3cret"}})
	cases := []struct {
		param  string
		reason string
	}{
		{"key=s3cret", ""},
		{"?key=s3cret", ""},
		{"vhost=v&key=s3cret&x=1", ""},
		{"key=s3cret&bad=%zz", ""},
		{"", ReasonKeyMissing},
		{"key=", ReasonKeyMissing},
		{"token=s3cret", ReasonKeyMissing},
		{"key=s3cre", ReasonKeyWrong},
		{"key=s3cretX", ReasonKeyWrong},
		{"key=S3CRET", ReasonKeyWrong},
	}
	for _, c := range cases {
		err := g.Publish(context.Background(), Request{Vhost: "v", IP: "1.2.3.4", Param: c.param})
		if c.reason == "" {
			require.NoError(t, err, c.param)
			continue
		}
		var d *Denied
		require.ErrorAs(t, err, &d, c.param)
		require.Equal(t, c.reason, d.Reason)
		require.NotContains(t, err.Error(), "s3cret")
	}
	// The key gates publishing only.
	require.NoError(t, g.Play(context.Background(), Request{Vhost: "v", IP: "1.2.3.4"}))
}

// hookServer is a real HTTP hook: it answers what the test set and
// records every body it got.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request)
	bodies []map[string]any
	got    chan struct{}
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{got: make(chan struct{}, 64)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		answer := h.answer
		h.mu.Unlock()
		h.got <- struct{}{}
		answer(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) set(f func(w http.ResponseWriter, r *http.Request)) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

func (h *hookServer) say(status int, body string) {
	h.set(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func (h *hookServer) last() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bodies[len(h.bodies)-1]
}

func TestHookOutcomes(t *testing.T) {
	h := newHookServer(t)
	hookURL := h.URL + "/hook?token=hooksecret"
	cfg := &configs.Config{Vhosts: []configs.Vhost{{Name: "v", Hooks: &configs.Hooks{
		OnPublish: []string{hookURL}, OnPlay: []string{hookURL},
	}}}}
	g := New(cfg, hooks.New(3*time.Second, nil), nil)
	short := New(cfg, hooks.New(300*time.Millisecond, nil), nil)
	r := Request{Protocol: "rtmp", ClientID: "42", IP: "127.0.0.1", Vhost: "v", App: "live", Stream: "s1",
		Param: "key=streamsecret&vhost=v", TcURL: "rtmp://127.0.0.1/live"}
	cases := []struct {
		name  string
		set   func()
		g     *Guard
		allow bool
		why   string
	}{
		{"bare 0", func() { h.say(200, "0") }, g, true, ""},
		{"code 0", func() { h.say(200, `{"code":0}`) }, g, true, ""},
		{"code 1", func() { h.say(200, `{"code":1}`) }, g, false, "code"},
		{"status 403", func() { h.say(403, "0") }, g, false, "403"},
		{"garbage", func() { h.say(200, "<html>") }, g, false, "not 0"},
		{"3 MB", func() { h.say(200, strings.Repeat("0", 3<<20)) }, g, false, "larger than"},
		{"redirect", func() {
			h.set(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusFound) })
		}, g, false, "302"},
		{"timeout", func() {
			h.set(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		}, short, false, "Timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.set()
			for _, action := range []string{"on_publish", "on_play"} {
				check := c.g.Publish
				if action == "on_play" {
					check = c.g.Play
				}
				err := check(context.Background(), r)
				if c.allow {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, ErrDenied)
					if c.name == "timeout" {
						var te interface{ Timeout() bool }
						require.ErrorAs(t, err, &te)
						require.True(t, te.Timeout())
					} else {
						require.ErrorIs(t, err, hooks.ErrRejected)
					}
					require.Contains(t, err.Error(), c.why)
					require.Contains(t, err.Error(), action)
					require.NotContains(t, err.Error(), "hooksecret")
					require.NotContains(t, err.Error(), "streamsecret")
					require.Equal(t, strings.TrimPrefix(action, "on_")+" denied: "+ReasonHookRejected, ClientMessage(err))
				}
				require.Equal(t, map[string]any{"action": action, "client_id": "42", "ip": "127.0.0.1",
					"vhost": "v", "app": "live", "stream": "s1", "param": "?key=streamsecret&vhost=v",
					"tcUrl": "rtmp://127.0.0.1/live", "server_id": "podium"}, h.last())
			}
		})
	}
}

func TestDeniedBeforeHookIsCalled(t *testing.T) {
	h := newHookServer(t)
	h.say(200, "0")
	g := New(&configs.Config{Vhosts: []configs.Vhost{{Name: "v",
		Security: &configs.Security{PublishDeny: []string{"10.0.0.0/8"}, PublishKey: "k"},
		Hooks:    &configs.Hooks{OnPublish: []string{h.URL}},
	}}}, hooks.New(3*time.Second, nil), nil)
	require.Error(t, g.Publish(context.Background(), Request{Vhost: "v", IP: "10.1.1.1", Param: "key=k"}))
	require.Error(t, g.Publish(context.Background(), Request{Vhost: "v", IP: "1.1.1.1", Param: "key=x"}))
	require.Empty(t, h.got, "the hook is not asked about a request the lists or the key refuse")
	require.NoError(t, g.Publish(context.Background(), Request{Vhost: "v", IP: "1.1.1.1", Param: "key=k"}))
	require.Len(t, h.got, 1)
}

func TestHookCanceledWithContext(t *testing.T) {
	h := newHookServer(t)
	h.set(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	g := New(&configs.Config{Vhosts: []configs.Vhost{{Name: "v", Hooks: &configs.Hooks{OnPublish: []string{h.URL}}}}},
		hooks.New(time.Minute, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-h.got; cancel() }()
	err := g.Publish(ctx, Request{Vhost: "v"})
	require.ErrorIs(t, err, context.Canceled)
}

// A hook that hangs holds up only the request it decides about.
func TestHangingHookDoesNotBlockOthers(t *testing.T) {
	slow, fast := newHookServer(t), newHookServer(t)
	slow.set(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	fast.say(200, "0")
	g := New(&configs.Config{Vhosts: []configs.Vhost{
		{Name: "slow", Hooks: &configs.Hooks{OnPublish: []string{slow.URL}}},
		{Name: "fast", Hooks: &configs.Hooks{OnPublish: []string{fast.URL}}},
	}}, hooks.New(10*time.Second, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slowDone := make(chan error, 1)
	go func() { slowDone <- g.Publish(ctx, Request{Vhost: "slow"}) }()
	<-slow.got
	for range 5 {
		require.NoError(t, g.Publish(context.Background(), Request{Vhost: "fast"}))
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow publish ended early: %v", err)
	default:
	}
	cancel()
	require.Error(t, <-slowDone)
}

func TestNotifications(t *testing.T) {
	h := newHookServer(t)
	h.say(500, "") // answers do not matter; failures are logged
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	hook := h.URL + "/n?token=hooksecret"
	g := New(&configs.Config{Vhosts: []configs.Vhost{{Name: "v", Hooks: &configs.Hooks{
		OnUnpublish: []string{hook}, OnStop: []string{hook},
	}}}}, hooks.New(3*time.Second, log), log)
	r := Request{ClientID: "9", IP: "::ffff:127.0.0.1", Vhost: "v", App: "live", Stream: "s", Param: "key=streamsecret"}
	g.Unpublished(r)
	g.Wait()
	require.Equal(t, "on_unpublish", h.last()["action"])
	require.Equal(t, "127.0.0.1", h.last()["ip"])
	require.Equal(t, "?key=streamsecret", h.last()["param"])
	g.Stopped(r)
	g.Wait()
	require.Equal(t, "on_stop", h.last()["action"])
	require.Equal(t, "9", h.last()["client_id"])
	logMu.Lock()
	defer logMu.Unlock()
	require.Equal(t, 2, strings.Count(logs.String(), "hook failed"))
	require.NotContains(t, logs.String(), "hooksecret")
	require.NotContains(t, logs.String(), "streamsecret")
}

func TestReload(t *testing.T) {
	g := guardFor(configs.Vhost{Name: "v", Security: &configs.Security{PublishDeny: []string{"0.0.0.0/0"}}})
	r := Request{Vhost: "v", IP: "1.2.3.4"}
	require.Error(t, g.Publish(context.Background(), r))
	g.Reload(&configs.Config{Vhosts: []configs.Vhost{{Name: "v"}}})
	require.NoError(t, g.Publish(context.Background(), r))
}

func TestHooksWithoutClientFailClosed(t *testing.T) {
	g := New(&configs.Config{Vhosts: []configs.Vhost{{Name: "v", Hooks: &configs.Hooks{OnPlay: []string{"http://h/"}}}}}, nil, nil)
	require.ErrorIs(t, g.Play(context.Background(), Request{Vhost: "v"}), ErrDenied)
	require.NoError(t, g.Publish(context.Background(), Request{Vhost: "v"}))
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
