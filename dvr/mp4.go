package dvr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"

	"github.com/podiumlive/podium/ingest/media"
)

// An MP4 recording is written as fragmented MP4 (mediacommon's fmp4): the
// init segment (ftyp+moov) first, then a moof+mdat fragment at least every
// fragmentSpan of media, each written with one write call and synced to
// disk every syncSpan. A kill -9 or a power loss leaves a file that plays
// up to its last fragment. On a clean end the file is rewritten as a
// progressive MP4 (mediacommon's pmp4: ftyp, moov with full sample tables
// at the front, one mdat), which every player seeks at once over HTTP
// Range; a crash's leftover is rewritten the same way at the next start.

const (
	fragmentSpan = time.Second
	syncSpan     = 2 * time.Second
	clock90k     = 90000
	// maxProgressive is the largest file rewritten as progressive MP4
	// (pmp4 writes 32-bit chunk offsets); bigger ones stay fragmented.
	maxProgressive = 4<<30 - 64<<20
)

// errNoSamples is returned by finish for a file that got no media.
var errNoSamples = errors.New("no media recorded")

// mp4Compatible reports whether an MP4 file can carry the codec.
func mp4Compatible(t *media.Track) bool {
	if t == nil {
		return true
	}
	switch t.Codec {
	case media.CodecH264, media.CodecH265, media.CodecAAC, media.CodecMP3:
		return true
	}
	return false
}

// sampleRef is one sample of the file: where its payload lies.
type sampleRef struct {
	off  int64
	size uint32
	dur  uint32
	cts  int32
	sync bool
}

type mp4Track struct {
	id        int
	timescale uint32
	codec     mp4.Codec
	video     bool
	lengthSz  int
	frame     int64 // audio: samples per frame

	pend    []*fmp4.Sample
	pendDTS []int64
	next    int64 // audio: where the next frame should start
	table   []sampleRef
	first   int64 // first DTS, -1 before any
	end     int64 // DTS after the last written sample
}

// mp4Writer records one file.
type mp4Writer struct {
	f      *os.File
	path   string // the temporary file
	off    int64  // bytes written and good
	seq    uint32
	tracks []*mp4Track
	video  *mp4Track
	audio  *mp4Track
	// firstPend is the earliest DTS in the pending fragment (Go time).
	firstPend time.Duration
	pending   bool
	lastSync  time.Duration
	lastDTS   time.Duration
	buf       seekablebuffer.Buffer
	nalus     [][]byte
}

// newMP4Writer creates path and writes the init segment for the tracks
// (either may be nil).
func newMP4Writer(path string, v, a *media.Track) (*mp4Writer, error) {
	w := &mp4Writer{path: path}
	var init fmp4.Init
	if v != nil {
		vc, err := media.ParseVideoConfig(v.Codec, v.Config)
		if err != nil {
			return nil, fmt.Errorf("%s config: %w", v.Codec, err)
		}
		t := &mp4Track{id: len(w.tracks) + 1, timescale: clock90k, video: true, lengthSz: vc.LengthSize, first: -1}
		switch v.Codec {
		case media.CodecH264:
			t.codec = &mp4.CodecH264{SPS: vc.SPS, PPS: vc.PPS}
		case media.CodecH265:
			t.codec = &mp4.CodecH265{VPS: vc.VPS, SPS: vc.SPS, PPS: vc.PPS}
		default:
			return nil, fmt.Errorf("video codec %s: not in MP4", v.Codec)
		}
		if vc.SPS == nil || vc.PPS == nil {
			return nil, fmt.Errorf("%s config without sps or pps", v.Codec)
		}
		w.video = t
		w.tracks = append(w.tracks, t)
	}
	if a != nil {
		t := &mp4Track{id: len(w.tracks) + 1, first: -1, next: -1}
		switch a.Codec {
		case media.CodecAAC:
			var asc mpeg4audio.AudioSpecificConfig
			if err := asc.Unmarshal(a.Config); err != nil {
				return nil, fmt.Errorf("aac config: %w", err)
			}
			t.codec = &mp4.CodecMPEG4Audio{Config: asc}
			t.timescale = uint32(asc.SampleRate)
			t.frame = 1024
			if asc.FrameLengthFlag {
				t.frame = 960
			}
		case media.CodecMP3:
			t.codec = &mp4.CodecMPEG1Audio{SampleRate: a.SampleRate, ChannelCount: max(1, a.Channels)}
			t.timescale = uint32(a.SampleRate)
			t.frame = 1152
		default:
			return nil, fmt.Errorf("audio codec %s: not in MP4", a.Codec)
		}
		if t.timescale == 0 {
			return nil, fmt.Errorf("%s without a sample rate", a.Codec)
		}
		w.audio = t
		w.tracks = append(w.tracks, t)
	}
	if len(w.tracks) == 0 {
		return nil, errors.New("no tracks")
	}
	for _, t := range w.tracks {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: t.id, TimeScale: t.timescale, Codec: t.codec})
	}
	if err := init.Marshal(&w.buf); err != nil {
		return nil, fmt.Errorf("fmp4 init: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w.f = f
	if err := w.writeOut(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return w, nil
}

// writeOut appends buf to the file; on a short write the file is cut back
// to the last good byte, so it stays playable.
func (w *mp4Writer) writeOut() error {
	b := w.buf.Bytes()
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		// WriteAt may have written part of it (and may not say so):
		// cut back to the last whole fragment.
		_ = w.f.Truncate(w.off)
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.off += int64(len(b))
	w.buf.Reset()
	_, _ = w.buf.Seek(0, io.SeekStart)
	return nil
}

// write adds one packet to the pending fragment (memory only: it never
// blocks); DTS and PTS are on the file's timeline (from 0, DTS increasing
// per track). flush writes it out when due says so.
func (w *mp4Writer) write(p *media.Packet) error {
	var t *mp4Track
	if p.Track.Kind == media.KindVideo {
		t = w.video
	} else {
		t = w.audio
	}
	if t == nil {
		return nil
	}
	if !w.pending {
		w.firstPend, w.pending = p.DTS, true
	}
	w.lastDTS = max(w.lastDTS, p.DTS)
	if t.video {
		dts := int64(p.DTS) * clock90k / int64(time.Second)
		cts := int64(p.PTS-p.DTS) * clock90k / int64(time.Second)
		payload := p.Data
		if t.lengthSz != 4 {
			var err error
			if w.nalus, err = splitNALUs(w.nalus, p.Data, t.lengthSz); err != nil {
				return nil // a broken access unit is left out
			}
			var s fmp4.Sample
			if err := s.FillH264(0, w.nalus); err != nil {
				return nil
			}
			payload = s.Payload
		}
		t.pend = append(t.pend, &fmp4.Sample{PTSOffset: int32(cts), IsNonSyncSample: !p.Key, Payload: payload})
		t.pendDTS = append(t.pendDTS, dts)
	} else {
		ts := int64(p.DTS) * int64(t.timescale) / int64(time.Second)
		if t.next >= 0 && abs64(ts-t.next) < t.frame/2 {
			ts = t.next // RTMP's millisecond timestamps jitter; audio frames don't
		}
		if len(t.pendDTS) > 0 && ts <= t.pendDTS[len(t.pendDTS)-1] {
			ts = t.pendDTS[len(t.pendDTS)-1] + 1
		}
		t.next = ts + t.frame
		t.pend = append(t.pend, &fmp4.Sample{Payload: p.Data})
		t.pendDTS = append(t.pendDTS, ts)
	}
	return nil
}

// due reports whether a fragment's worth of media waits to be written.
func (w *mp4Writer) due() bool { return w.pending && w.lastDTS-w.firstPend >= fragmentSpan }

// flush writes the pending fragment (all but each track's last sample).
func (w *mp4Writer) flush() error { return w.fragment(false) }

// fragment writes the pending samples as one moof+mdat. Unless final, the
// last sample of each track waits for the next one, which gives its
// duration.
func (w *mp4Writer) fragment(final bool) error {
	part := fmp4.Part{SequenceNumber: w.seq + 1}
	type cut struct {
		t *mp4Track
		n int
	}
	var cuts []cut
	payload := 0
	for _, t := range w.tracks {
		n := len(t.pend)
		if !final {
			n--
		}
		if n <= 0 {
			continue
		}
		for i := range n {
			var d int64
			switch {
			case i+1 < len(t.pendDTS):
				d = t.pendDTS[i+1] - t.pendDTS[i]
			case t.video && len(t.table) > 0:
				d = int64(t.table[len(t.table)-1].dur)
			case t.video:
				d = clock90k / 25
			default:
				d = t.frame
			}
			t.pend[i].Duration = uint32(max(d, 0))
			payload += len(t.pend[i].Payload)
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(t.pendDTS[0]), Samples: t.pend[:n]})
		cuts = append(cuts, cut{t, n})
	}
	if len(cuts) == 0 {
		return nil
	}
	if err := part.Marshal(&w.buf); err != nil {
		return fmt.Errorf("fmp4 part: %w", err)
	}
	off := w.off + int64(len(w.buf.Bytes())) - int64(payload)
	if err := w.writeOut(); err != nil {
		return err
	}
	w.seq++
	for _, c := range cuts {
		t := c.t
		if t.first < 0 {
			t.first = t.pendDTS[0]
		}
		for i, s := range t.pend[:c.n] {
			t.table = append(t.table, sampleRef{off: off, size: uint32(len(s.Payload)), dur: s.Duration, cts: s.PTSOffset, sync: !s.IsNonSyncSample})
			off += int64(len(s.Payload))
			t.end = t.pendDTS[i] + int64(s.Duration)
		}
		rest := copy(t.pend, t.pend[c.n:])
		clear(t.pend[rest:])
		t.pend = t.pend[:rest]
		t.pendDTS = t.pendDTS[:copy(t.pendDTS, t.pendDTS[c.n:])]
	}
	w.pending = false
	for _, t := range w.tracks {
		if len(t.pendDTS) > 0 {
			d := time.Duration(t.pendDTS[0]) * time.Second / time.Duration(t.timescale)
			if !w.pending || d < w.firstPend {
				w.firstPend, w.pending = d, true
			}
		}
	}
	if final || w.lastDTS-w.lastSync >= syncSpan {
		w.lastSync = w.lastDTS
		if err := fdatasync(w.f); err != nil {
			return fmt.Errorf("sync %s: %w", w.path, err)
		}
	}
	return nil
}

// size is the bytes on disk.
func (w *mp4Writer) size() int64 { return w.off }

// duration is the media written, by the longest track.
func (w *mp4Writer) duration() time.Duration {
	var d time.Duration
	for _, t := range w.tracks {
		if t.first >= 0 {
			d = max(d, time.Duration(t.end-t.first)*time.Second/time.Duration(t.timescale))
		}
	}
	return d
}

// flush writes what is pending (the file then plays to its last packet).
func (w *mp4Writer) close(final bool) error {
	var err error
	if final {
		err = w.fragment(true)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// finish ends the file: written out, rewritten as progressive MP4 into
// final (or, when that fails, the fragmented file renamed to final). It
// returns whether the rewrite happened.
func (w *mp4Writer) finish(final string, flush bool) (bool, error) {
	err := w.close(flush)
	if w.duration() <= 0 {
		_ = os.Remove(w.path)
		if err != nil {
			return false, err
		}
		return false, errNoSamples
	}
	return finalizeMP4(w.path, final, w.tracks)
}

// finalizeMP4 rewrites the fragmented file src, whose samples are tracks'
// tables, as a progressive MP4 at dst and removes src; when the rewrite
// fails (a full disk, a file over 4 GiB) src is renamed to dst as it is.
func finalizeMP4(src, dst string, tracks []*mp4Track) (bool, error) {
	perr := writeProgressive(src, dst+".mov.tmp", tracks)
	if perr == nil {
		if err := os.Rename(dst+".mov.tmp", dst); err == nil {
			_ = os.Remove(src)
			return true, nil
		} else {
			perr = err
		}
	}
	_ = os.Remove(dst + ".mov.tmp")
	if err := os.Rename(src, dst); err != nil {
		return false, fmt.Errorf("rename %s: %w", src, err)
	}
	return false, fmt.Errorf("kept fragmented: %w", perr)
}

func writeProgressive(src, dst string, tracks []*mp4Track) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || st.Size() > maxProgressive {
		return fmt.Errorf("%s: too big for a progressive rewrite", src)
	}
	var pres pmp4.Presentation
	start := int64(-1)
	for _, t := range tracks {
		if len(t.table) == 0 {
			continue
		}
		s := time.Duration(t.first) * time.Second / time.Duration(t.timescale)
		if start < 0 || int64(s) < start {
			start = int64(s)
		}
	}
	var scratch []byte
	for _, t := range tracks {
		if len(t.table) == 0 {
			continue
		}
		pt := &pmp4.Track{ID: t.id, TimeScale: t.timescale, Codec: t.codec}
		// The edit list puts each track where it starts on the common
		// timeline; video's first composition offset is skipped.
		lead := (t.first*int64(time.Second)/int64(t.timescale) - start) * int64(t.timescale) / int64(time.Second)
		pt.TimeOffset = int32(lead)
		if t.video {
			pt.TimeOffset -= t.table[0].cts
		}
		for _, r := range t.table {
			pt.Samples = append(pt.Samples, &pmp4.Sample{
				Duration: r.dur, PTSOffset: r.cts, IsNonSyncSample: !r.sync, PayloadSize: r.size,
				GetPayload: func() ([]byte, error) {
					if cap(scratch) < int(r.size) {
						scratch = make([]byte, r.size)
					}
					b := scratch[:r.size]
					_, err := in.ReadAt(b, r.off)
					return b, err
				},
			})
		}
		pres.Tracks = append(pres.Tracks, pt)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	err = pres.Marshal(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = fdatasync(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// splitNALUs splits a length-prefixed access unit into its NAL units.
func splitNALUs(dst [][]byte, data []byte, lengthSize int) ([][]byte, error) {
	dst = dst[:0]
	for len(data) > 0 {
		if len(data) < lengthSize {
			return dst, errors.New("truncated nal unit length")
		}
		n := 0
		for i := range lengthSize {
			n = n<<8 | int(data[i])
		}
		data = data[lengthSize:]
		if n > len(data) {
			return dst, errors.New("nal unit longer than the access unit")
		}
		if n > 0 {
			dst = append(dst, data[:n])
		}
		data = data[n:]
	}
	return dst, nil
}
