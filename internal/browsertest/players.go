package browsertest

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

//go:embed pages
var pages embed.FS

// VendorDir is ui/assets/vendor in this source tree: the players the
// dashboard ships, so the tests play with exactly those files.
func VendorDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..", "ui", "assets", "vendor")
}

// Pages serves the test pages (/hls.html, /flv.html) and the vendored
// players (/vendor/...) on 127.0.0.1 for the length of the test. They are
// on another origin than the server under test, so playback also checks
// its CORS headers.
func Pages(t testing.TB) string {
	t.Helper()
	sub, err := fs.Sub(pages, "pages")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/vendor/", http.StripPrefix("/vendor/", http.FileServer(http.Dir(VendorDir(t)))))
	mux.Handle("/", http.FileServer(http.FS(sub)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Result is what a test page reports: its window.__result, and whether it
// finished (window.__done) with ok true.
type Result struct {
	OK     bool
	Done   bool
	Value  map[string]any
	Errors []string
}

// RunPage opens url in a new tab and waits (up to timeout) for the page to
// set window.__done; it returns window.__result. The contract: the page
// sets window.__result (a JSON object) as it goes and window.__done = true
// when it has its answer; ok means __result.ok === true.
func (b *Browser) RunPage(url string, timeout time.Duration) Result {
	b.t.Helper()
	tab := b.Tab()
	tab.Go(url)
	deadline := time.Now().Add(timeout)
	var r Result
	for {
		st := Eval[struct {
			Done   bool           `json:"done"`
			Result map[string]any `json:"result"`
		}](tab, `({done: window.__done === true, result: window.__result || null})`)
		r.Done, r.Value = st.Done, st.Result
		if r.Done || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.OK = r.Done && r.Value != nil && r.Value["ok"] == true
	r.Errors = tab.Errors()
	return r
}

// Play plays src for want seconds of media time in the player page kind
// ("hls": hls.js, "flv": mpegts.js) and fails the test unless it played
// without a fatal error within 90 s. It returns the page's result
// (currentTime, advanced, errors; flv adds stallMs, liveLatency and
// mediaInfo).
func (b *Browser) Play(pagesURL, kind, src string, want float64) map[string]any {
	b.t.Helper()
	u := fmt.Sprintf("%s/%s.html?want=%g&src=%s", pagesURL, kind, want, url.QueryEscape(src))
	r := b.RunPage(u, 90*time.Second)
	require.True(b.t, r.OK, "%s player on %s: done=%v result=%v page errors=%v", kind, src, r.Done, r.Value, r.Errors)
	return r.Value
}
