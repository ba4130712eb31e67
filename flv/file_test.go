package flv

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// AppendHeader and AppendTag write what the tests' own FLV writer writes.
func TestAppendTagMatchesFileWriter(t *testing.T) {
	tags := []flvTag{
		{Type: tagScript, TS: 0, Body: MetadataBody(media.Metadata{{Name: "width", Value: 320.0}}, false)},
		{Type: tagVideo, TS: 1000, Body: []byte{0x17, 0, 0, 0, 0, 1, 2, 3}},
		{Type: tagAudio, TS: 0x01020304, Body: []byte{0xAF, 1, 9}},
	}
	path := filepath.Join(t.TempDir(), "a.flv")
	writeFLV(t, path, tags)
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	got := AppendHeader(nil, true, true)
	for _, tg := range tags {
		got = AppendTag(got, tg.Type, tg.TS, tg.Body[:1], tg.Body[1:])
	}
	require.Equal(t, want, got)
	require.Equal(t, got, AppendTag(got, tagVideo, 0, nil, make([]byte, 1<<24)), "a body too big for a tag is left out")
}

// TagWriter sends each sequence header before the first packet of its
// track and again when the track changes, and metadata once per version.
func TestTagWriter(t *testing.T) {
	a1 := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}}
	a2 := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x11, 0x90}}
	sp := &media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1}
	var w TagWriter
	var b []byte
	b = w.AppendMetadata(b, TrackMetadata(nil, a1), 1)
	b = w.AppendMetadata(b, TrackMetadata(nil, a1), 1)
	for _, p := range []media.Packet{
		{Track: a1, DTS: time.Second, Data: []byte{1}},
		{Track: a1, DTS: time.Second + 23*time.Millisecond, Data: []byte{2}},
		{Track: a2, DTS: 2 * time.Second, Data: []byte{3}},
		{Track: sp, DTS: 3 * time.Second, Data: []byte{4}},
	} {
		b = w.AppendPacket(b, &p)
	}
	path := filepath.Join(t.TempDir(), "w.flv")
	require.NoError(t, os.WriteFile(path, append(AppendHeader(nil, false, true), b...), 0o644))
	got := readFLV(t, path)
	var kinds []string
	for _, tg := range got {
		kinds = append(kinds, map[byte]string{tagScript: "meta", tagAudio: "audio"}[tg.Type]+
			map[bool]string{true: "-config", false: ""}[tg.Type == tagAudio && len(tg.Body) > 1 && tg.Body[0] == 0xAF && tg.Body[1] == 0])
	}
	require.Equal(t, []string{"meta", "audio-config", "audio", "audio", "audio-config", "audio", "audio"}, kinds)
	require.Equal(t, []byte{0xB6, 4}, got[6].Body, "Speex: no sequence header")
	m, err := ParseMetadata(got[0].Body)
	require.NoError(t, err)
	v, _ := m.Get("hasVideo")
	require.Equal(t, false, v)
	v, _ = m.Get("audiocodecid")
	require.Equal(t, 10.0, v)
}
