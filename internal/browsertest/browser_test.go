package browsertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBrowserRunsPagesAndSeesErrors: Chromium loads a page, the driver
// types and clicks into it, reads its result, and collects its errors.
func TestBrowserRunsPagesAndSeesErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><input id="in"><button id="go" onclick="
			window.__result = {ok: document.getElementById('in').value === 'hello', got: document.getElementById('in').value};
			window.__done = true;">go</button>
			<script>console.error('on purpose'); setTimeout(() => { throw new Error('thrown on purpose'); }, 0);</script>`)
	}))
	defer srv.Close()
	b := New(t)
	tab := b.Tab()
	tab.Go(srv.URL)
	tab.Type("#in", "hello")
	tab.Click("#go")
	require.Equal(t, "hello", WaitJS[string](tab, `window.__done && window.__result.got`, 5*time.Second))
	require.Eventually(t, func() bool { return len(tab.Errors()) >= 2 }, 5*time.Second, 50*time.Millisecond)
	require.Contains(t, tab.Errors()[0]+tab.Errors()[1], "on purpose")

	r := b.RunPage(srv.URL, 2*time.Second)
	require.False(t, r.Done, "nobody clicked: the page never finishes")
	require.False(t, r.OK)
}

// TestPlayersAreServed: the test pages load the vendored players.
func TestPlayersAreServed(t *testing.T) {
	base := Pages(t)
	for _, p := range []string{"/hls.html", "/flv.html", "/vendor/hls.js/hls.light.min.js", "/vendor/mpegts.js/mpegts.js"} {
		resp, err := http.Get(base + p)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Greater(t, len(b), 1000, p)
	}
	// Without a source the FLV page reports a fatal error instead of hanging.
	b := New(t)
	r := b.RunPage(base+"/flv.html?src=http://127.0.0.1:1/none.flv", 30*time.Second)
	require.True(t, r.Done, "%v", r.Value)
	require.False(t, r.OK)
	require.NotEmpty(t, r.Value["fatal"], "%v", r.Value)
	require.NotEmpty(t, r.Value["mpegtsVersion"])
}
