package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/syncbuf"
)

func TestAllowed(t *testing.T) {
	for _, ok := range []string{`0`, " 0\n", `{"code":0}`, `{"code": 0, "data": {"x": 1}}`} {
		require.NoError(t, Allowed([]byte(ok)), ok)
	}
	for _, bad := range []string{``, `1`, `00`, `garbage`, `{}`, `{"code":1}`, `{"code":-1}`, `{"code":"0"}`,
		`{"code":0.0}`, `{"code":null}`, `[0]`, `null`, `"0"`, `{"code":0`} {
		err := Allowed([]byte(bad))
		require.ErrorIs(t, err, ErrRejected, bad)
	}
}

// hookServer answers with what the test says and records the bodies.
type hookServer struct {
	*httptest.Server
	answer atomic.Value // func(http.ResponseWriter, *http.Request)
	bodies chan []byte
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{bodies: make(chan []byte, 16)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case h.bodies <- b:
		default:
		}
		h.answer.Load().(func(http.ResponseWriter, *http.Request))(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) say(status int, body string) {
	h.answer.Store(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func TestPostAnswers(t *testing.T) {
	h := newHookServer(t)
	// Generous for the answers (a loaded CI machine); short for the hook
	// that never answers.
	c, short := New(3*time.Second, nil), New(300*time.Millisecond, nil)
	ev := Event{Action: "on_publish", ClientID: "7", IP: "1.2.3.4", Vhost: "v", App: "live",
		Stream: "s", Param: "?key=k", TcURL: "rtmp://h/live", ServerID: "podium"}
	cases := []struct {
		name  string
		set   func()
		allow bool
		msg   string
	}{
		{"bare 0", func() { h.say(200, "0") }, true, ""},
		{"code 0", func() { h.say(200, `{"code":0}`) }, true, ""},
		{"code 1", func() { h.say(200, `{"code":1}`) }, false, `code "1"`},
		{"code 403", func() { h.say(200, `{"code":403,"msg":"no"}`) }, false, `code "403"`},
		{"garbage", func() { h.say(200, "<html>oops</html>") }, false, "not 0 or a JSON object"},
		{"empty", func() { h.say(200, "") }, false, "not 0"},
		{"status 500 with 0", func() { h.say(500, "0") }, false, "status 500"},
		{"status 204", func() { h.say(204, "") }, false, "status 204"},
		{"3 MB", func() { h.say(200, strings.Repeat(" ", 3<<20)+"0") }, false, "larger than"},
		{"redirect", func() {
			h.answer.Store(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			})
		}, false, "status 302"},
		{"timeout", func() {
			h.answer.Store(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		}, false, "Client.Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			client := c
			if tc.name == "timeout" {
				client = short
			}
			start := time.Now()
			ans, err := client.Post(context.Background(), h.URL+"/hook?token=s3cret", ev)
			require.Less(t, time.Since(start), 5*time.Second)
			if tc.allow {
				require.NoError(t, err)
				require.NoError(t, Allowed(ans))
			} else {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.msg)
				require.NotContains(t, err.Error(), "s3cret")
				require.Contains(t, err.Error(), "token=xxx")
			}
			var got map[string]any
			require.NoError(t, json.Unmarshal(<-h.bodies, &got))
			require.Equal(t, map[string]any{"action": "on_publish", "client_id": "7", "ip": "1.2.3.4",
				"vhost": "v", "app": "live", "stream": "s", "param": "?key=k", "tcUrl": "rtmp://h/live",
				"server_id": "podium"}, got)
		})
	}
}

func TestPostRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		followed.Store(true)
		_, _ = io.WriteString(w, "0")
	}))
	defer target.Close()
	h := newHookServer(t)
	h.answer.Store(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	_, err := New(time.Second, nil).Post(context.Background(), h.URL, Event{Action: "on_play"})
	require.ErrorIs(t, err, ErrRejected)
	require.False(t, followed.Load())
}

func TestPostUnreachableAndCanceled(t *testing.T) {
	h := newHookServer(t)
	h.answer.Store(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := New(10*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Post(ctx, h.URL+"?key=s3cret", Event{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.NotContains(t, err.Error(), "s3cret")

	url := h.URL
	h.Close()
	_, err = c.Post(context.Background(), url+"/x?token=s3cret", Event{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestCheckStopsAtFirstRejection(t *testing.T) {
	a, b := newHookServer(t), newHookServer(t)
	a.say(200, "0")
	b.say(200, `{"code":1}`)
	c := New(time.Second, nil)
	require.NoError(t, c.Check(context.Background(), nil, Event{}))
	require.NoError(t, c.Check(context.Background(), []string{a.URL, a.URL}, Event{}))
	require.Len(t, a.bodies, 2)
	<-a.bodies
	<-a.bodies
	err := c.Check(context.Background(), []string{b.URL, a.URL}, Event{})
	require.ErrorIs(t, err, ErrRejected)
	require.Len(t, a.bodies, 0, "hooks after a rejection are not called")
}

func TestNotifyLogsFailuresRedactedAndWait(t *testing.T) {
	h := newHookServer(t)
	h.say(500, "")
	var logs syncBuffer
	c := New(time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	c.Notify([]string{h.URL + "/x?token=s3cret", h.URL + "/y"}, Event{Action: "on_stop"})
	c.Wait()
	require.Len(t, h.bodies, 2)
	require.Equal(t, 2, strings.Count(logs.String(), "hook failed"))
	require.NotContains(t, logs.String(), "s3cret")
}

func FuzzAllowed(f *testing.F) {
	for _, s := range []string{`0`, `{"code":0}`, `{"code":1}`, `{"code":"0"}`, `garbage`, `[0]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Allowed(b) == nil {
			// Only a bare 0 or an object whose code is the number 0 allows.
			trim := bytes.TrimSpace(b)
			if string(trim) != "0" {
				var a struct {
					Code json.RawMessage `json:"code"`
				}
				require.NoError(t, json.Unmarshal(trim, &a))
				require.Equal(t, "0", string(a.Code))
			}
		}
	})
}

func TestEventExtra(t *testing.T) {
	b, err := json.Marshal(Event{Action: "on_hls", App: "live", Extra: map[string]any{"duration": 2.5, "app": "other"}})
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, "live", got["app"], "Extra never overrides a base field")
	require.Equal(t, 2.5, got["duration"])
	require.Equal(t, "on_hls", got["action"])
}

func TestRedact(t *testing.T) {
	require.Equal(t, "http://xxx@h/a?token=xxx&x=1", Redact("http://u:p@h/a?token=s3cret&x=1"))
	require.Equal(t, "http://h/a?KEY=xxx", Redact("http://h/a?KEY=s3cret"))
	require.Equal(t, "http://h/a", Redact("http://h/a"))
	require.Equal(t, "(unparsable url)", Redact("http://h/%zz?token=s3cret"))
}

// syncBuffer is a log sink the handler's goroutines may share.
type syncBuffer = syncbuf.Buffer
