package flv

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FLV file container, written and read by the tests themselves so that the
// package under test only ever sees tag bodies, as it does behind RTMP.

const (
	tagAudio  = 8
	tagVideo  = 9
	tagScript = 18
)

type flvTag struct {
	Type byte
	TS   uint32
	Body []byte
}

func readFLV(t testing.TB, path string) []flvTag {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(b), 13, "flv file too short")
	require.Equal(t, "FLV", string(b[:3]))
	pos := int(binary.BigEndian.Uint32(b[5:9])) + 4 // header, PreviousTagSize0
	var tags []flvTag
	for pos < len(b) {
		require.LessOrEqual(t, pos+11, len(b), "tag header truncated at %d", pos)
		h := b[pos : pos+11]
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		end := pos + 11 + size
		require.LessOrEqual(t, end+4, len(b), "tag body truncated at %d", pos)
		require.Equal(t, uint32(11+size), binary.BigEndian.Uint32(b[end:]), "previous tag size at %d", end)
		tags = append(tags, flvTag{Type: h[0] & 0x1F, TS: ts, Body: bytes.Clone(b[pos+11 : end])})
		pos = end + 4
	}
	return tags
}

func writeFLV(t testing.TB, path string, tags []flvTag) {
	t.Helper()
	var flags byte
	for _, tag := range tags {
		switch tag.Type {
		case tagAudio:
			flags |= 4
		case tagVideo:
			flags |= 1
		}
	}
	b := []byte{'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0}
	for _, tag := range tags {
		n := len(tag.Body)
		b = append(b, tag.Type, byte(n>>16), byte(n>>8), byte(n),
			byte(tag.TS>>16), byte(tag.TS>>8), byte(tag.TS), byte(tag.TS>>24), 0, 0, 0)
		b = append(b, tag.Body...)
		b = binary.BigEndian.AppendUint32(b, uint32(11+n))
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

type probeStream struct {
	CodecType     string `json:"codec_type"`
	CodecName     string `json:"codec_name"`
	SampleRate    string `json:"sample_rate"`
	Channels      int    `json:"channels"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	NbReadPackets string `json:"nb_read_packets"`
}

type probePacket struct {
	CodecType string `json:"codec_type"`
	PTS       int64  `json:"pts"`
	DTS       int64  `json:"dts"`
	Flags     string `json:"flags"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Packets []probePacket `json:"packets"`
}

func (p probeResult) stream(t testing.TB, kind string) probeStream {
	t.Helper()
	for _, s := range p.Streams {
		if s.CodecType == kind {
			return s
		}
	}
	require.Failf(t, "no stream", "ffprobe found no %s stream in %+v", kind, p.Streams)
	return probeStream{}
}

func (p probeResult) packets(kind string) []probePacket {
	var out []probePacket
	for _, pk := range p.Packets {
		if pk.CodecType == kind {
			out = append(out, pk)
		}
	}
	return out
}

func ffprobe(t testing.TB, path string) probeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-count_packets",
		"-show_streams", "-show_packets", path).Output()
	require.NoError(t, err, "ffprobe %s: %s", path, exitStderr(err))
	var r probeResult
	require.NoError(t, json.Unmarshal(out, &r))
	return r
}

// ffmpeg runs the ffmpeg CLI with args and writes to a new file named out
// in a temporary directory, whose path it returns.
func ffmpeg(t testing.TB, out string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), out)
	args = append(append([]string{"-hide_banner", "-v", "error", "-nostdin", "-y"}, args...), path)
	cmd := exec.Command("ffmpeg", args...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "ffmpeg %v: %s", args, b)
	return path
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return fmt.Sprint(err)
}
