package forward

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/hooks"
)

// callHook goes through hooks.Client: the SRS body, no redirects, a
// bounded answer and time, and errors that never carry the hook's token.
func TestCallHook(t *testing.T) {
	// The handlers of requests the client gave up on (/huge, /hang) may
	// still run while the next request is served.
	var (
		mu   sync.Mutex
		body map[string]any
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var got map[string]any
		_ = json.Unmarshal(b, &got)
		mu.Lock()
		body = got
		mu.Unlock()
		switch r.URL.Path {
		case "/urls":
			_, _ = io.WriteString(w, `{"code":0,"data":{"urls":["rtmp://a/live/s"]}}`)
		case "/redirect":
			http.Redirect(w, r, "/urls", http.StatusFound)
		case "/http":
			_, _ = io.WriteString(w, `{"code":0,"data":{"urls":["http://a/live/s"]}}`)
		case "/huge":
			_, _ = io.WriteString(w, strings.Repeat(" ", 3<<20))
		case "/hang":
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	c := hooks.New(300*time.Millisecond, nil)
	ev := hooks.Event{Action: "on_forward", Vhost: "transcode", App: "live", Stream: "s", Param: "?a=1"}

	urls, err := callHook(context.Background(), c, srv.URL+"/urls?token=s3cret", ev)
	require.NoError(t, err)
	require.Equal(t, []string{"rtmp://a/live/s"}, urls)
	mu.Lock()
	got := body
	mu.Unlock()
	require.Equal(t, "on_forward", got["action"])
	require.Equal(t, "transcode", got["vhost"])
	require.Equal(t, "?a=1", got["param"])

	for path, want := range map[string]string{
		"/redirect": "status 302", "/http": "not an rtmp:// URL", "/huge": "larger than", "/hang": "Timeout",
	} {
		_, err := callHook(context.Background(), c, srv.URL+path+"?token=s3cret", ev)
		require.ErrorContains(t, err, want, path)
		require.ErrorContains(t, err, "token=xxx", path)
		require.NotContains(t, err.Error(), "s3cret", path)
	}
}
