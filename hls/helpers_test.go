package hls

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/syncbuf"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// fixture encodes (once per run) a short FLV with ffmpeg: real H.264 and
// AAC, so the segments can be checked with ffprobe.
var fixtures sync.Map

func fixture(t testing.TB, name string, args ...string) string {
	t.Helper()
	if p, ok := fixtures.Load(name); ok {
		return p.(string)
	}
	dir := filepath.Join(os.TempDir(), "podium-hls-fixtures")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".flv")
	if _, err := os.Stat(path); err != nil {
		full := append([]string{"-v", "error", "-y"}, args...)
		full = append(full, "-f", "flv", path+".tmp")
		out, err := exec.Command("ffmpeg", full...).CombinedOutput()
		require.NoError(t, err, "make fixture %s: %s", name, out)
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	fixtures.Store(name, path)
	return path
}

// avFixture: 6 s of H.264 320x240 25 fps with a keyframe every 0.5 s, and
// AAC 44.1 kHz mono.
func avFixture(t testing.TB) string {
	return fixture(t, "av-6s",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "12", "-keyint_min", "12",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100", "-ac", "1")
}

// readFLV demuxes an FLV file into packets with Podium's own demuxer.
func readFLV(t testing.TB, path string) []media.Packet {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, len(b) > 13 && string(b[:3]) == "FLV")
	pos := int(binary.BigEndian.Uint32(b[5:9])) + 4
	var d flv.Demuxer
	var out []media.Packet
	for pos+11 <= len(b) {
		typ := b[pos] & 0x1f
		size := int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		ts := uint32(b[pos+4])<<16 | uint32(b[pos+5])<<8 | uint32(b[pos+6]) | uint32(b[pos+7])<<24
		body := b[pos+11 : pos+11+size]
		pos += 11 + size + 4
		var (
			p  media.Packet
			ok bool
		)
		switch typ {
		case 8:
			p, ok, err = d.Audio(ts, body)
		case 9:
			p, ok, err = d.Video(ts, body)
		default:
			continue
		}
		require.NoError(t, err)
		if ok {
			out = append(out, p)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// only keeps the packets of one kind.
func only(pkts []media.Packet, kind media.Kind) []media.Packet {
	var out []media.Packet
	for _, p := range pkts {
		if p.Track.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// shift moves packets by d (a second publish continues the clock or not).
func shift(pkts []media.Packet, d time.Duration) []media.Packet {
	out := make([]media.Packet, len(pkts))
	for i, p := range pkts {
		p.DTS += d
		p.PTS += d
		out[i] = p
	}
	return out
}

// env is a hub and an HLS manager on a temp directory.
type env struct {
	t    testing.TB
	hub  *stream.Hub
	m    *Manager
	dir  string
	set  Settings
	logs *syncBuffer
	pub  *stream.Publisher
}

// syncBuffer collects output that several goroutines write.
type syncBuffer = syncbuf.Buffer

func newEnv(t testing.TB, set Settings, opts Options) *env {
	t.Helper()
	if set.Path == "" {
		set.Path = t.TempDir()
	}
	e := &env{t: t, dir: set.Path, set: set, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.hub = stream.NewHub(stream.DefaultOptions(), log)
	e.start(opts)
	t.Cleanup(func() {
		e.hub.Close()
		e.m.Close()
	})
	return e
}

func (e *env) start(opts Options) {
	m, err := NewManager(e.hub, map[string]Settings{"v": e.set}, opts, slog.New(slog.NewTextHandler(e.logs, nil)))
	require.NoError(e.t, err)
	require.NoError(e.t, m.Start(context.Background()))
	e.m = m
}

// publish writes pkts to v/live/NAME as fast as possible and unpublishes;
// it returns when the segmenter has finished.
func (e *env) publish(name string, pkts []media.Packet) {
	e.t.Helper()
	e.openPublisher(name)
	pub := e.pub
	for i, p := range pkts {
		pub.WritePacket(p)
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // let the segmenter keep up: no drops
		}
	}
	pub.Close()
	e.waitIdle(name)
}

func (e *env) openPublisher(name string) {
	e.t.Helper()
	pub, err := e.hub.Publish(stream.Key{Vhost: "v", App: "live", Name: name}, stream.ClientInfo{Protocol: "test", Remote: "127.0.0.1:1"})
	require.NoError(e.t, err)
	e.pub = pub
}

// waitIdle waits until the stream's segmenter has ended.
func (e *env) waitIdle(name string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for _, s := range e.m.Stats().Streams {
			if s.Stream == name {
				return !s.Live
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
}

func (e *env) playlist(name string) *m3u8.MediaPlaylist {
	e.t.Helper()
	return readPlaylist(e.t, filepath.Join(e.dir, "live", name+".m3u8"))
}

func readPlaylist(t testing.TB, path string) *m3u8.MediaPlaylist {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return parsePlaylist(t, b)
}

func parsePlaylist(t testing.TB, b []byte) *m3u8.MediaPlaylist {
	t.Helper()
	p, typ, err := m3u8.Decode(*bytes.NewBuffer(b), true)
	require.NoError(t, err, "%s", b)
	require.Equal(t, m3u8.MEDIA, typ)
	return p.(*m3u8.MediaPlaylist)
}

func segments(p *m3u8.MediaPlaylist) []*m3u8.MediaSegment {
	var out []*m3u8.MediaSegment
	for _, s := range p.Segments {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// probe runs ffprobe on a file and returns "video:h264", "audio:aac"...
func probe(t testing.TB, path string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_streams", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	var res struct {
		Streams []struct {
			Type  string `json:"codec_type"`
			Codec string `json:"codec_name"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	var kinds []string
	for _, s := range res.Streams {
		kinds = append(kinds, s.Type+":"+s.Codec)
	}
	return kinds
}

// decodeErrors decodes a file fully with ffmpeg and returns its complaints.
func decodeErrors(t testing.TB, path string) string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	require.NoError(t, cmd.Run(), "decode %s: %s", path, stderr.String())
	return strings.TrimSpace(stderr.String())
}

func countLines(s, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
