package dvr

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/syncbuf"
)

// record writes the fixture to final through the MP4 writer.
func record(t *testing.T, final string) {
	t.Helper()
	pkts := h264AAC(t)
	v, a := tracksOf(pkts)
	require.NoError(t, os.MkdirAll(filepath.Dir(final), 0o755))
	w, err := newMP4Writer(tempName(final), v, a)
	require.NoError(t, err)
	for i := range pkts {
		writeOne(t, w, &pkts[i])
	}
	_, err = w.finish(final, true)
	require.NoError(t, err)
}

func TestCatalogScanKeepAndDelete(t *testing.T) {
	root := t.TempDir()
	tm, err := ParseTemplate(filepath.Join(root, "[app]", "[stream]", "[timestamp].mp4"))
	require.NoError(t, err)
	old := filepath.Join(root, "live", "a%2Fb", "1000.mp4")
	fresh := filepath.Join(root, "live", "room1", "2000.mp4")
	record(t, old)
	record(t, fresh)
	require.NoError(t, os.Chtimes(old, time.Now().Add(-3*time.Hour), time.Now().Add(-3*time.Hour)))
	// A crash's leftover: fragmented, under its temporary name.
	crashed := filepath.Join(root, "live", "room1", "3000.mp4")
	pkts := h264AAC(t)
	v, a := tracksOf(pkts)
	w, err := newMP4Writer(tempName(crashed), v, a)
	require.NoError(t, err)
	for i := range pkts[:len(pkts)/2] {
		writeOne(t, w, &pkts[i])
	}
	_ = w.f.Close()

	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := NewManager(hub, map[string]Settings{"v": {Template: tm, Keep: time.Hour}}, Options{}, nil)
	m.scan()
	list := m.List()
	require.Len(t, list, 3)
	byFile := map[string]Recording{}
	for _, r := range list {
		byFile[r.File] = r
		require.Equal(t, "v", r.Vhost)
		require.Equal(t, "live", r.App)
	}
	require.Equal(t, "a/b", byFile[old].Stream, "escaped names are read back")
	require.InDelta(t, 6.0, byFile[fresh].Duration.Seconds(), 0.1)
	require.Greater(t, byFile[crashed].Duration.Seconds(), 1.5, "the crash's leftover is finished and listed")
	_, err = os.Stat(tempName(crashed))
	require.ErrorIs(t, err, os.ErrNotExist)

	m.clean(time.Now())
	_, err = os.Stat(old)
	require.ErrorIs(t, err, os.ErrNotExist, "older than keep: deleted")
	_, err = os.Stat(filepath.Join(root, "live", "a%2Fb"))
	require.ErrorIs(t, err, os.ErrNotExist, "its empty directory too")
	require.Len(t, m.List(), 2)

	require.NoError(t, m.Delete(byFile[fresh].ID))
	require.ErrorIs(t, m.Delete(byFile[fresh].ID), ErrNotFound)
	_, _, err = m.Open("nope")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestMinFreeLogsOncePerInterval(t *testing.T) {
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tm, err := ParseTemplate(filepath.Join(t.TempDir(), "[stream].mp4"))
	require.NoError(t, err)
	set := Settings{Template: tm, MinFree: 1 << 62, Setting: "vhosts[0].dvr"}
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := NewManager(hub, map[string]Settings{"v": set}, Options{FreeInterval: time.Hour}, log)
	key := stream.Key{Vhost: "v", App: "live", Name: "x"}
	for range 5 {
		require.False(t, m.roomFor(key, set))
	}
	require.Equal(t, 1, strings.Count(logs.String(), "vhosts[0].dvr.min_free"), logs.String())
	require.EqualValues(t, 5, m.Stats().Failures)
	set.MinFree = 1
	require.True(t, m.roomFor(key, set))
}
