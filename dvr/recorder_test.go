package dvr

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/syncbuf"
)

// startDVR runs a Manager for vhost "v" with the template over a hub.
func startDVR(t *testing.T, tmpl string, set Settings) (*stream.Hub, *Manager, *syncbuf.Buffer) {
	t.Helper()
	tm, err := ParseTemplate(tmpl)
	require.NoError(t, err)
	set.Template = tm
	if set.Plan == "" {
		set.Plan = PlanSession
	}
	var logs syncbuf.Buffer
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	m := NewManager(hub, map[string]Settings{"v": set}, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	m.Start(context.Background())
	t.Cleanup(func() { hub.Close(); m.Close() })
	return hub, m, &logs
}

// publishPackets sends pkts as one publish (as fast as the hub takes
// them, with a little pacing so no reader overflows) and ends it.
func publishPackets(t *testing.T, hub *stream.Hub, name string, pkts []media.Packet) {
	t.Helper()
	pub, err := hub.Publish(stream.Key{Vhost: "v", App: "live", Name: name}, stream.ClientInfo{Protocol: "rtmp", Remote: "127.0.0.1:5000"})
	require.NoError(t, err)
	for i := range pkts {
		pub.WritePacket(pkts[i])
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	pub.Close()
}

// TestRecorderTimestampsGoBack: the publisher's clock restarts mid-class;
// the recording goes on, monotonic, and plays to the end.
func TestRecorderTimestampsGoBack(t *testing.T) {
	dir := t.TempDir()
	hub, m, logs := startDVR(t, filepath.Join(dir, "[stream].mp4"), Settings{})
	src := h264AAC(t)
	var pkts []media.Packet
	pkts = append(pkts, src...)
	for _, p := range src { // the same 6 s again, from 0
		pkts = append(pkts, p)
	}
	publishPackets(t, hub, "back", pkts)
	require.Eventually(t, func() bool { l := m.List(); return len(l) == 1 && !l[0].Recording }, 10*time.Second, 20*time.Millisecond)
	file := filepath.Join(dir, "back.mp4")
	_, d := ffprobe(t, file)
	require.InDelta(t, 12.0, d, 0.3, "both halves, one after the other")
	decodes(t, file)
	require.Contains(t, logs.String(), "timestamps jumped")
}

// TestRecorderPathCannotBeCreated: the directory is a file; the recorder
// says so once, records nothing, and the stream is unharmed.
func TestRecorderPathCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "live")
	require.NoError(t, os.WriteFile(blocker, []byte("not a directory"), 0o644))
	hub, m, logs := startDVR(t, filepath.Join(dir, "[app]", "[stream].mp4"), Settings{})
	publishPackets(t, hub, "x", h264AAC(t))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "dvr write failed") }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, strings.Count(logs.String(), "dvr write failed"), "one line per 10 s")
	require.Empty(t, m.List())
	require.Positive(t, m.Stats().Failures)
}

// TestRecorderSegments: plan segment cuts at keyframes every duration.
func TestRecorderSegments(t *testing.T) {
	dir := t.TempDir()
	hub, m, _ := startDVR(t, filepath.Join(dir, "[stream]-[timestamp].mp4"), Settings{Plan: PlanSegment, Duration: 2 * time.Second})
	publishPackets(t, hub, "seg", h264AAC(t))
	require.Eventually(t, func() bool {
		l := m.List()
		return len(l) == 3 && !l[0].Recording && !l[1].Recording && !l[2].Recording
	}, 10*time.Second, 20*time.Millisecond)
	var total float64
	for _, r := range m.List() {
		_, d := ffprobe(t, r.File)
		require.InDelta(t, 2.0, d, 0.2, r.File)
		decodes(t, r.File)
		total += d
	}
	require.InDelta(t, 6.0, total, 0.3)
}
