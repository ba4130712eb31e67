package hls

import (
	"bytes"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/podiumlive/podium/ingest/media"
)

// clock90k is the MPEG-TS clock rate: every timestamp handed to a muxer is
// in 90 kHz ticks on the playlist's own timeline (never negative).
const clock90k = 90000

// muxer turns one period's packets (fixed tracks) into segments.
type muxer interface {
	// video writes one video access unit.
	video(p *media.Packet, dts, pts int64) error
	// audio writes one audio frame.
	audio(p *media.Packet, pts int64) error
	// segment ends the current segment; end is where the next one starts.
	// The bytes stay valid until the next call on the muxer.
	segment(seq uint64, end int64) ([]byte, error)
	// size is the bytes buffered for the current segment.
	size() int
	// initSegment is the fMP4 initialization segment (nil for MPEG-TS).
	initSegment() []byte
}

// newMuxer makes the variant's muxer for a period with these tracks (one
// of them may be nil).
func newMuxer(variant string, vc *videoConfig, ac *audioConfig) (muxer, error) {
	if variant == VariantFMP4 {
		return newFMP4Muxer(vc, ac)
	}
	return newTSMuxer(vc, ac)
}

// maxAudioBatch is how many audio frames share one PES packet: fewer PES
// headers and tables, the way nginx-rtmp buffers audio.
const maxAudioBatch = 8

// tsMuxer writes MPEG-TS through mediacommon. One mpegts.Writer lasts the
// period, so continuity counters run on across segments; each segment
// starts with a keyframe (or, audio-only, an audio frame), where the
// writer repeats PAT and PMT.
type tsMuxer struct {
	vc    *videoConfig
	ac    *audioConfig
	w     *mpegts.Writer
	vt    *mpegts.Track
	at    *mpegts.Track
	buf   bytes.Buffer
	reset bool
	nalus [][]byte
	au    [][]byte

	// the audio frames waiting to share one PES
	aus     [][]byte
	ausPTS  int64
	ausNext int64
}

func newTSMuxer(vc *videoConfig, ac *audioConfig) (*tsMuxer, error) {
	m := &tsMuxer{vc: vc, ac: ac}
	var tracks []*mpegts.Track
	if vc != nil {
		switch vc.codec {
		case media.CodecH264:
			m.vt = &mpegts.Track{Codec: &mpegts.CodecH264{}}
		case media.CodecH265:
			m.vt = &mpegts.Track{Codec: &mpegts.CodecH265{}}
		}
		tracks = append(tracks, m.vt)
	}
	if ac != nil {
		switch ac.codec {
		case media.CodecAAC:
			m.at = &mpegts.Track{Codec: &mpegts.CodecMPEG4Audio{Config: ac.asc}}
		case media.CodecMP3:
			m.at = &mpegts.Track{Codec: &mpegts.CodecMPEG1Audio{}}
		}
		tracks = append(tracks, m.at)
	}
	m.w = &mpegts.Writer{W: &m.buf, Tracks: tracks}
	if err := m.w.Initialize(); err != nil {
		return nil, fmt.Errorf("mpegts writer: %w", err)
	}
	return m, nil
}

func (m *tsMuxer) begin() {
	if m.reset {
		m.buf.Reset()
		m.reset = false
	}
}

func (m *tsMuxer) video(p *media.Packet, dts, pts int64) error {
	m.begin()
	var err error
	m.nalus, err = splitNALUs(m.nalus, p.Data, m.vc.lengthSize)
	if err != nil {
		return err
	}
	au := m.nalus
	if p.Key && !hasParams(m.vc.codec, au) {
		m.au = withParams(m.au, m.vc, au)
		au = m.au
	}
	if m.vc.codec == media.CodecH265 {
		err = m.w.WriteH265(m.vt, pts, dts, au)
	} else {
		err = m.w.WriteH264(m.vt, pts, dts, au)
	}
	clear(m.au)
	if err != nil {
		return fmt.Errorf("mpegts video: %w", err)
	}
	return nil
}

func (m *tsMuxer) audio(p *media.Packet, pts int64) error {
	m.begin()
	frame := int64(m.ac.frameSamples) * clock90k / int64(m.ac.rate)
	if len(m.aus) > 0 && (len(m.aus) >= maxAudioBatch || abs64(pts-m.ausNext) > frame/2) {
		if err := m.flushAudio(); err != nil {
			return err
		}
	}
	if len(m.aus) == 0 {
		m.ausPTS = pts
		m.ausNext = pts
	}
	m.aus = append(m.aus, p.Data)
	m.ausNext += frame
	return nil
}

func (m *tsMuxer) flushAudio() error {
	if len(m.aus) == 0 {
		return nil
	}
	var err error
	if m.ac.codec == media.CodecMP3 {
		err = m.w.WriteMPEG1Audio(m.at, m.ausPTS, m.aus)
	} else {
		err = m.w.WriteMPEG4Audio(m.at, m.ausPTS, m.aus)
	}
	clear(m.aus)
	m.aus = m.aus[:0]
	if err != nil {
		return fmt.Errorf("mpegts audio: %w", err)
	}
	return nil
}

func (m *tsMuxer) segment(uint64, int64) ([]byte, error) {
	m.begin()
	if err := m.flushAudio(); err != nil {
		return nil, err
	}
	m.reset = true
	return m.buf.Bytes(), nil
}

func (m *tsMuxer) size() int {
	if m.reset {
		return 0
	}
	return m.buf.Len() + len(m.aus)*256
}

func (m *tsMuxer) initSegment() []byte { return nil }

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// fmp4Muxer writes fragmented MP4 through mediacommon: an init segment per
// period, then one moof+mdat per segment. Video is timed in 90 kHz, audio
// in its sample rate.
type fmp4Muxer struct {
	vc   *videoConfig
	ac   *audioConfig
	init []byte

	vs    []*fmp4.Sample
	vdts  []int64
	as    []*fmp4.Sample
	adts  []int64 // in audio samples
	anext int64   // where the next audio frame should start, in samples
	bytes int

	nalus [][]byte
	buf   seekablebuffer.Buffer
}

const (
	fmp4VideoID = 1
	fmp4AudioID = 2
)

func newFMP4Muxer(vc *videoConfig, ac *audioConfig) (*fmp4Muxer, error) {
	m := &fmp4Muxer{vc: vc, ac: ac, anext: -1}
	var init fmp4.Init
	if vc != nil {
		t := &fmp4.InitTrack{ID: fmp4VideoID, TimeScale: clock90k}
		switch vc.codec {
		case media.CodecH264:
			t.Codec = &fmp4.CodecH264{SPS: vc.sps, PPS: vc.pps}
		case media.CodecH265:
			t.Codec = &fmp4.CodecH265{VPS: vc.vps, SPS: vc.sps, PPS: vc.pps}
		}
		init.Tracks = append(init.Tracks, t)
	}
	if ac != nil {
		t := &fmp4.InitTrack{ID: fmp4AudioID, TimeScale: uint32(ac.rate)}
		switch ac.codec {
		case media.CodecAAC:
			t.Codec = &fmp4.CodecMPEG4Audio{Config: ac.asc}
		case media.CodecMP3:
			t.Codec = &fmp4.CodecMPEG1Audio{SampleRate: ac.rate, ChannelCount: max(1, ac.channels)}
		}
		init.Tracks = append(init.Tracks, t)
	}
	var b seekablebuffer.Buffer
	if err := init.Marshal(&b); err != nil {
		return nil, fmt.Errorf("fmp4 init: %w", err)
	}
	m.init = b.Bytes()
	return m, nil
}

func (m *fmp4Muxer) initSegment() []byte { return m.init }

func (m *fmp4Muxer) video(p *media.Packet, dts, pts int64) error {
	payload := p.Data
	if m.vc.lengthSize != 4 {
		var err error
		m.nalus, err = splitNALUs(m.nalus, p.Data, m.vc.lengthSize)
		if err != nil {
			return err
		}
		var s fmp4.Sample
		if err := s.FillH264(0, m.nalus); err != nil {
			return fmt.Errorf("fmp4 video: %w", err)
		}
		payload = s.Payload
	}
	m.vs = append(m.vs, &fmp4.Sample{
		PTSOffset:       int32(pts - dts),
		IsNonSyncSample: !p.Key,
		Payload:         payload,
	})
	m.vdts = append(m.vdts, dts)
	m.bytes += len(payload)
	return nil
}

func (m *fmp4Muxer) audio(p *media.Packet, pts int64) error {
	t := pts * int64(m.ac.rate) / clock90k
	if m.anext >= 0 && abs64(t-m.anext) < int64(m.ac.frameSamples)/2 {
		t = m.anext // RTMP's millisecond timestamps jitter; frames don't
	}
	m.anext = t + int64(m.ac.frameSamples)
	m.as = append(m.as, &fmp4.Sample{Payload: p.Data})
	m.adts = append(m.adts, t)
	m.bytes += len(p.Data)
	return nil
}

func (m *fmp4Muxer) segment(seq uint64, end int64) ([]byte, error) {
	var part fmp4.Part
	part.SequenceNumber = uint32(seq)
	if len(m.vs) > 0 {
		last := end - m.vdts[len(m.vdts)-1]
		if last <= 0 && len(m.vdts) > 1 {
			last = m.vdts[len(m.vdts)-1] - m.vdts[len(m.vdts)-2]
		}
		for i, s := range m.vs {
			if i+1 < len(m.vdts) {
				s.Duration = uint32(max(0, m.vdts[i+1]-m.vdts[i]))
			} else {
				s.Duration = uint32(max(1, last))
			}
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: fmp4VideoID, BaseTime: uint64(m.vdts[0]), Samples: m.vs})
	}
	if len(m.as) > 0 {
		for i, s := range m.as {
			if i+1 < len(m.adts) {
				s.Duration = uint32(max(0, m.adts[i+1]-m.adts[i]))
			} else {
				s.Duration = uint32(m.ac.frameSamples)
			}
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: fmp4AudioID, BaseTime: uint64(m.adts[0]), Samples: m.as})
	}
	m.buf.Reset()
	_, _ = m.buf.Seek(0, io.SeekStart) // Reset keeps the write position
	err := part.Marshal(&m.buf)
	clear(m.vs)
	clear(m.as)
	m.vs, m.vdts, m.as, m.adts = m.vs[:0], m.vdts[:0], m.as[:0], m.adts[:0]
	m.bytes = 0
	if err != nil {
		return nil, fmt.Errorf("fmp4 part: %w", err)
	}
	return m.buf.Bytes(), nil
}

func (m *fmp4Muxer) size() int { return m.bytes }
