package dvr

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
)

var fixtureMu sync.Mutex

// fixture encodes (once per run) an FLV with ffmpeg and returns its
// packets as the hub would carry them.
func fixture(t *testing.T, name string, args ...string) []media.Packet {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	dir := filepath.Join(os.TempDir(), "podium-dvr-fixtures")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".flv")
	if _, err := os.Stat(path); err != nil {
		full := append([]string{"-v", "error", "-y"}, args...)
		full = append(full, "-f", "flv", path+".tmp")
		out, err := exec.Command("ffmpeg", full...).CombinedOutput()
		require.NoError(t, err, "ffmpeg: %s", out)
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var d flv.Demuxer
	var pkts []media.Packet
	for pos := int(binary.BigEndian.Uint32(b[5:9])) + 4; pos+11 <= len(b); {
		h := b[pos : pos+11]
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		body := b[pos+11 : pos+11+size]
		pos += 11 + size + 4
		var (
			p  media.Packet
			ok bool
		)
		switch h[0] & 0x1f {
		case 8:
			p, ok, err = d.Audio(ts, body)
		case 9:
			p, ok, err = d.Video(ts, body)
		}
		require.NoError(t, err)
		if ok {
			pkts = append(pkts, p)
		}
	}
	return pkts
}

// h264AAC is 6 s of H.264 (with B-frames, GOP 1 s) + AAC 44.1 kHz.
func h264AAC(t *testing.T) []media.Packet {
	return fixture(t, "h264-aac-6s",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k")
}

type probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		NbFrames  string `json:"nb_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) (probe, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	var p probe
	require.NoError(t, json.Unmarshal(out, &p))
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	return p, d
}

// decodes runs ffmpeg -v error -f null on path: no output means clean.
func decodes(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, string(out), "ffmpeg decode errors")
}

func codecs(p probe) map[string]string {
	m := map[string]string{}
	for _, s := range p.Streams {
		m[s.CodecType] = s.CodecName
	}
	return m
}
