package ui

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// fakeRecordings is a RecordingStore over files in a directory.
type fakeRecordings struct {
	mu   sync.Mutex
	recs []Recording
}

func (f *fakeRecordings) Recordings() []Recording {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Recording(nil), f.recs...)
}

func (f *fakeRecordings) find(id string) (Recording, error) {
	for _, r := range f.Recordings() {
		if r.ID == id {
			if r.Recording {
				return r, ErrRecordingBusy
			}
			return r, nil
		}
	}
	return Recording{}, ErrRecordingNotFound
}

func (f *fakeRecordings) OpenRecording(id string) (*os.File, Recording, error) {
	r, err := f.find(id)
	if err != nil {
		return nil, r, err
	}
	fh, err := os.Open(r.File)
	return fh, r, err
}

func (f *fakeRecordings) DeleteRecording(id string) error {
	r, err := f.find(id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.recs {
		if f.recs[i].ID == id {
			f.recs = append(f.recs[:i], f.recs[i+1:]...)
			break
		}
	}
	return os.Remove(r.File)
}

func (f *fakeRecordings) RecordingStats() RecordingStats {
	return RecordingStats{Bytes: 10, Files: 1, Failures: 2, Recording: 1,
		Disks: []RecordingDisk{{Vhost: "v", Dir: "/rec", Free: 12345}}}
}

func (f *fakeRecordings) IsRecording(k stream.Key) bool { return k.Name == "live1" }

func TestRecordingsAPI(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.mp4")
	body := []byte(strings.Repeat("0123456789", 1000))
	require.NoError(t, os.WriteFile(file, body, 0o644))
	start := time.UnixMilli(1_700_000_000_000)
	store := &fakeRecordings{recs: []Recording{
		{ID: "abc", Stream: stream.Key{Vhost: "v", App: "live", Name: "room"}, File: file, Start: start, Duration: 12345 * time.Millisecond, Bytes: int64(len(body))},
		{ID: "now", Stream: stream.Key{Vhost: "v", App: "live", Name: "live1"}, File: filepath.Join(dir, "b.tmp.mp4"), Start: start, Recording: true},
	}}
	f := newFixture(t, func(d *Deps, _ *Options) { d.Recordings = store })

	type view struct {
		Code       int             `json:"code"`
		Recordings []RecordingView `json:"recordings"`
	}
	v := decode[view](t, f.get("/api/v1/recordings"))
	require.Equal(t, 0, v.Code)
	require.Equal(t, []RecordingView{
		{ID: "abc", Vhost: "v", App: "live", Stream: "room", File: file, URL: "/api/v1/recordings/abc/download",
			StartMs: 1_700_000_000_000, Duration: 12.345, Bytes: int64(len(body))},
		{ID: "now", Vhost: "v", App: "live", Stream: "live1", File: filepath.Join(dir, "b.tmp.mp4"), URL: "/api/v1/recordings/now/download",
			StartMs: 1_700_000_000_000, Recording: true},
	}, v.Recordings)

	res, got := f.request(http.MethodGet, "/api/v1/recordings/abc/download", true, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, body, got)
	require.Equal(t, "video/mp4", res.Header.Get("Content-Type"))
	res, got = f.request(http.MethodGet, "/api/v1/recordings/abc/download", true, nil, "Range", "bytes=10-19")
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	require.Equal(t, body[10:20], got)
	res, _ = f.request(http.MethodGet, "/api/v1/recordings/abc/download?download=1", true, nil)
	require.Contains(t, res.Header.Get("Content-Disposition"), `attachment; filename="a.mp4"`)

	for _, c := range []struct {
		method, path string
		auth         bool
		status       int
	}{
		{http.MethodGet, "/api/v1/recordings", false, http.StatusUnauthorized},
		{http.MethodGet, "/api/v1/recordings/abc/download", false, http.StatusUnauthorized},
		{http.MethodDelete, "/api/v1/recordings/abc", false, http.StatusUnauthorized},
		{http.MethodGet, "/recordings", true, http.StatusOK},
		{http.MethodGet, "/api/v1/recordings/now/download", true, http.StatusConflict},
		{http.MethodDelete, "/api/v1/recordings/now", true, http.StatusConflict},
		{http.MethodGet, "/api/v1/recordings/nope/download", true, http.StatusNotFound},
		{http.MethodDelete, "/api/v1/recordings/abc", true, http.StatusOK},
		{http.MethodDelete, "/api/v1/recordings/abc", true, http.StatusNotFound},
	} {
		res, b := f.request(c.method, c.path, c.auth, nil)
		require.Equal(t, c.status, res.StatusCode, "%s %s: %s", c.method, c.path, b)
	}
	_, err := os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist)

	m := parseExposition(t, string(f.get("/metrics")))
	require.Equal(t, 10.0, m["podium_dvr_bytes_total"])
	require.Equal(t, 2.0, m["podium_dvr_failures_total"])
	require.Equal(t, 12345.0, m[`podium_dvr_disk_free_bytes{vhost="v",dir="/rec"}`])
}

func TestRecordingsWithoutDVR(t *testing.T) {
	f := newFixture(t)
	require.JSONEq(t, `{"code":0,"recordings":[]}`, string(f.get("/api/v1/recordings")))
}
