package dvr

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

func tracksOf(pkts []media.Packet) (v, a *media.Track) {
	for _, p := range pkts {
		if p.Track.Kind == media.KindVideo && v == nil {
			v = p.Track
		}
		if p.Track.Kind == media.KindAudio && a == nil {
			a = p.Track
		}
	}
	return v, a
}

func TestMP4WriterProgressiveOnClose(t *testing.T) {
	pkts := h264AAC(t)
	v, a := tracksOf(pkts)
	dir := t.TempDir()
	tmp, final := filepath.Join(dir, "a.tmp.mp4"), filepath.Join(dir, "a.mp4")
	w, err := newMP4Writer(tmp, v, a)
	require.NoError(t, err)
	sizes := []int64{}
	for i := range pkts {
		writeOne(t, w, &pkts[i])
		sizes = append(sizes, w.size())
	}
	// Fragments reach the disk during the recording, at least every
	// fragmentSpan: never more than ~1 s of packets waits in memory.
	grew := 0
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1] {
			grew++
		}
	}
	require.GreaterOrEqual(t, grew, 5, "a 6 s recording is written in at least 5 fragments")
	rewritten, err := w.finish(final, true)
	require.NoError(t, err)
	require.True(t, rewritten)
	_, err = os.Stat(tmp)
	require.ErrorIs(t, err, os.ErrNotExist, "the temporary file is gone")

	p, d := ffprobe(t, final)
	require.Equal(t, map[string]string{"video": "h264", "audio": "aac"}, codecs(p))
	require.InDelta(t, 6.0, d, 0.1)
	decodes(t, final)
	// Progressive: moov before mdat, so a player seeks at once.
	b, err := os.ReadFile(final)
	require.NoError(t, err)
	require.Equal(t, "ftyp", string(b[4:8]))
	moov := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	require.Equal(t, "moov", string(b[moov+4:moov+8]))
	md, err := mp4Duration(final)
	require.NoError(t, err)
	require.InDelta(t, 6.0, md.Seconds(), 0.1)
}

func TestMP4CrashLeavesPlayableFileAndRecovers(t *testing.T) {
	pkts := h264AAC(t)
	v, a := tracksOf(pkts)
	dir := t.TempDir()
	tmp := filepath.Join(dir, "b.tmp.mp4")
	w, err := newMP4Writer(tmp, v, a)
	require.NoError(t, err)
	for i := range pkts {
		if pkts[i].DTS > 5*time.Second {
			break
		}
		writeOne(t, w, &pkts[i])
	}
	// A crash: nothing is flushed or finished; the half-written next
	// fragment is simulated by garbage at the end.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 0x10, 0, 'm', 'o', 'o', 'f', 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_ = w.f.Close()

	_, d := ffprobe(t, tmp)
	require.GreaterOrEqual(t, d, 3.9, "a crash loses at most the last fragment")

	final := filepath.Join(dir, "b.mp4")
	require.NoError(t, recoverMP4(tmp, final))
	p, d2 := ffprobe(t, final)
	require.Equal(t, map[string]string{"video": "h264", "audio": "aac"}, codecs(p))
	require.InDelta(t, d, d2, 0.1)
	decodes(t, final)
}

func TestFLVWriter(t *testing.T) {
	pkts := h264AAC(t)
	v, a := tracksOf(pkts)
	dir := t.TempDir()
	tmp, final := filepath.Join(dir, "c.tmp.flv"), filepath.Join(dir, "c.flv")
	w, err := newFLVWriter(tmp, v, a, media.Metadata{{Name: "encoder", Value: "test"}})
	require.NoError(t, err)
	for i := range pkts {
		writeOne(t, w, &pkts[i])
	}
	_, err = w.finish(final, true)
	require.NoError(t, err)
	p, d := ffprobe(t, final)
	require.Equal(t, map[string]string{"video": "h264", "audio": "aac"}, codecs(p))
	require.InDelta(t, 6.0, d, 0.15)
	decodes(t, final)
	f, err := os.Open(final)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	fd, err := flvDuration(f, st.Size())
	require.NoError(t, err)
	require.InDelta(t, 6.0, fd.Seconds(), 0.15)
}

func TestMP4RefusesSpeex(t *testing.T) {
	require.False(t, mp4Compatible(&media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex}))
	_, err := newMP4Writer(filepath.Join(t.TempDir(), "x.mp4"), nil, &media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex, SampleRate: 16000})
	require.Error(t, err)
}

// writeOne writes p as the recorder does: buffered, flushed when due.
func writeOne(t *testing.T, w container, p *media.Packet) {
	t.Helper()
	require.NoError(t, w.write(p))
	if w.due() {
		require.NoError(t, w.flush())
	}
}

// FuzzScanFMP4: whatever a crash (or a disk) left under a temporary name,
// scanning it at start-up returns, without a panic.
func FuzzScanFMP4(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'v'})
	f.Add([]byte{0, 0, 0, 16, 'm', 'o', 'o', 'f', 0, 0, 0, 8, 'm', 'd', 'a', 't', 0, 0, 0, 8, 'm', 'd', 'a', 't'})
	f.Add([]byte{0, 0, 0, 1, 'f', 't', 'y', 'p', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "x.tmp.mp4")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = scanFMP4(p)
		_, _ = mp4Duration(p)
	})
}
