package flv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// benchFrame is a 16 KiB inter-frame AVC body: a typical 720p frame at
// 3 Mbit/s, 25 fps.
func benchFrame(b *testing.B) (*Demuxer, []byte) {
	var d Demuxer
	_, _, err := d.Video(0, avcConfigBody(b))
	require.NoError(b, err)
	body := make([]byte, 5+16<<10)
	copy(body, []byte{0x27, 1, 0, 0, 80, 0, 0, 0x3F, 0xFB, 0x41})
	return &d, body
}

func BenchmarkDemuxVideo(b *testing.B) {
	d, body := benchFrame(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := d.Video(uint32(i), body); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVideoBody(b *testing.B) {
	d, body := benchFrame(b)
	pkt, _, err := d.Video(40, body)
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VideoBody(&pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendVideo reuses one buffer, as an RTMP writer can.
func BenchmarkAppendVideo(b *testing.B) {
	d, body := benchFrame(b)
	pkt, _, err := d.Video(40, body)
	require.NoError(b, err)
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendVideo(buf[:0], &pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDemuxAudio(b *testing.B) {
	var d Demuxer
	_, _, err := d.Audio(0, []byte{0xAF, 0, 0x12, 0x10})
	require.NoError(b, err)
	body := make([]byte, 2+300)
	body[0], body[1] = 0xAF, 1
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := d.Audio(uint32(i), body); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkParseMetadata(b *testing.B) {
	body := MetadataBody(kv("duration", 0.0, "width", 1280.0, "height", 720.0, "videodatarate", 2500.0,
		"framerate", 30.0, "videocodecid", 7.0, "audiodatarate", 128.0, "audiosamplerate", 44100.0,
		"audiosamplesize", 16.0, "stereo", true, "audiocodecid", 10.0, "encoder", "obs-output module (libobs version 30.1.2)",
		"filesize", 0.0), true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMetadata(body); err != nil {
			b.Fatal(err)
		}
	}
}
