package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMeterCountsViewersAndChecksTokens(t *testing.T) {
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "0123456789") })
	m := NewMeter("", 10*time.Second)
	h := m.Wrap(files)
	get := func(path, ua string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("User-Agent", ua)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	// Two sessions, one anonymous browser fetching twice, a segment.
	require.Equal(t, 200, get("/live/room101.m3u8?ps=ps_aa01", "x"))
	require.Equal(t, 200, get("/live/room101.m3u8?ps=ps_aa02", "x"))
	require.Equal(t, 200, get("/live/room101.m3u8", "phone"))
	require.Equal(t, 200, get("/live/room101.m3u8", "phone"))
	require.Equal(t, 200, get("/live/room101/12.ts", "phone"))
	require.Equal(t, 200, get("/live/other.flv", "tablet"))
	v := m.Viewers(time.Now())
	require.Equal(t, 3, v["live/room101"])
	require.Zero(t, v["live/other"], "an FLV player is a hub reader, counted there")
	require.EqualValues(t, 60, m.Bytes())
	require.Empty(t, m.Viewers(time.Now().Add(11*time.Second)), "viewers leave after the window")

	// With a play secret the serving box refuses playlists and FLV
	// without a valid token; segments are not checked.
	secret := "0123456789abcdef"
	h = NewMeter(secret, 10*time.Second).Wrap(files)
	tok := SignToken(secret, "live", "room101", time.Now().Add(time.Minute))
	require.Equal(t, 403, get("/live/room101.m3u8", "x"))
	require.Equal(t, 403, get("/live/room101.m3u8?token="+SignToken(secret, "live", "other", time.Now().Add(time.Minute)), "x"))
	require.Equal(t, 403, get("/live/room101.flv?token=123.abc", "x"))
	require.Equal(t, 200, get("/live/room101.m3u8?token="+tok, "x"))
	require.Equal(t, 200, get("/live/room101.flv?token="+tok, "x"))
	require.Equal(t, 200, get("/live/room101/12.ts", "x"))
}

// TestMeterCountsServedFiles: segments served from files (sendfile path)
// are counted as egress.
func TestMeterCountsServedFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "live", "room101"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "live", "room101", "1.ts"), make([]byte, 188*1000), 0o644))
	m := NewMeter("", 10*time.Second)
	srv := httptest.NewServer(m.Wrap(http.FileServer(http.Dir(dir))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/live/room101/1.ts")
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.EqualValues(t, 188*1000, n)
	require.Eventually(t, func() bool { return m.Bytes() == 188*1000 }, 2*time.Second, 5*time.Millisecond, "counted when the handler returns")
}
