package hls

import (
	"bytes"
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

const (
	// probeSpan bounds how long (in stream time) the segmenter waits to
	// learn which tracks a stream has before it starts without the missing
	// ones; probePackets and probeBytes bound the memory it holds meanwhile.
	probeSpan    = 2 * time.Second
	probePackets = 2048
	probeBytes   = 16 << 20
	// maxSegmentBytes cuts a segment even without a keyframe (a stream
	// whose GOP never ends must not grow memory without bound).
	maxSegmentBytes = 48 << 20
	// minBase is where a fresh timeline starts (90 kHz): clear of zero, so
	// PCR (DTS - 100 ms) never goes negative.
	minBase = 10 * clock90k
	// maxBase restarts the timeline (at a discontinuity anyway) long
	// before MPEG-TS's 33-bit clock wraps.
	maxBase = 1 << 32
	// cutSlack lets a keyframe a few milliseconds early still end a
	// segment (RTMP timestamps are whole milliseconds: a 29.97 fps
	// keyframe lands on 0.999 s).
	cutSlack = 5 * clock90k / 1000
)

// segmenter cuts one publish of a stream into segments. It lives on the
// stream's goroutine and owns the muxer; the playlist state it appends to
// is its hlsStream's.
type segmenter struct {
	s        *hlsStream
	variant  string
	fragment int64 // 90 kHz

	// probing: packets held until the tracks are known
	probing    bool
	probe      []media.Packet
	probeBytes int
	probeKey   bool // a keyframe of a supported video track was seen
	probeAudio bool // a supported audio frame was seen
	wantVideo  bool // metadata promises video (or there is no metadata)
	wantAudio  bool
	metaKnown  bool

	// the period: fixed tracks, one muxer, one timeline
	vtrack, atrack *media.Track
	pendingAudio   *media.Track // an audio change waiting for a keyframe
	vc             *videoConfig
	ac             *audioConfig
	mux            muxer
	period         uint64
	initName       string
	initWritten    bool
	firstDTS       time.Duration
	base           int64
	pendingDisc    bool

	lastLead  int64 // the leading track's last timestamp
	leadDelta int64 // ...and its last frame duration
	lastOut   int64 // the last timestamp of any track

	// the open segment
	segOpen  bool
	segStart int64
	segWall  time.Time

	warned map[string]bool
}

func newSegmenter(s *hlsStream, meta media.Metadata) *segmenter {
	g := &segmenter{
		s:        s,
		variant:  s.set.Variant,
		fragment: int64(s.set.Fragment / time.Microsecond * 9 / 100),
		probing:  true,
		warned:   make(map[string]bool),
	}
	g.readMetadata(meta)
	return g
}

// readMetadata learns from onMetaData which tracks to wait for: ffmpeg,
// OBS and Podium's own forward write videocodecid/audiocodecid only for
// tracks they send.
func (g *segmenter) readMetadata(meta media.Metadata) {
	g.wantVideo, g.wantAudio, g.metaKnown = true, true, false
	if len(meta) == 0 {
		return
	}
	_, v := meta.Get("videocodecid")
	_, a := meta.Get("audiocodecid")
	if hv, ok := meta.Get("hasVideo"); ok {
		b, _ := hv.(bool)
		v = v || b
	}
	if ha, ok := meta.Get("hasAudio"); ok {
		b, _ := ha.(bool)
		a = a || b
	}
	if !v && !a {
		return // metadata that says nothing about tracks
	}
	g.wantVideo, g.wantAudio, g.metaKnown = v, a, true
}

// packet takes one packet of the stream, in arrival order.
func (g *segmenter) packet(p *media.Packet) {
	if g.probing {
		g.probePacket(p)
		return
	}
	g.handle(p)
}

func (g *segmenter) probePacket(p *media.Packet) {
	g.probe = append(g.probe, *p)
	g.probeBytes += len(p.Data)
	if p.IsVideoKey() && supported(p.Track) {
		g.probeKey = true
	}
	if p.Track.Kind == media.KindAudio && supported(p.Track) {
		g.probeAudio = true
	}
	span := g.probe[len(g.probe)-1].DTS - g.probe[0].DTS
	ready := (g.probeKey || !g.wantVideo) && (g.probeAudio || !g.wantAudio)
	if !ready && span < probeSpan && len(g.probe) < probePackets && g.probeBytes < probeBytes {
		return
	}
	// The tracks: the last supported ones seen (a video track only with a
	// keyframe to start on).
	var v, a *media.Track
	for i := range g.probe {
		q := &g.probe[i]
		if q.IsVideoKey() && supported(q.Track) {
			v = q.Track
		}
		if q.Track.Kind == media.KindAudio && supported(q.Track) {
			a = q.Track
		}
	}
	held := g.probe
	g.probe, g.probeBytes, g.probing = nil, 0, false
	g.vtrack, g.atrack = v, a
	if v == nil && a == nil {
		g.warnOnce("tracks", "hls: no H.264/H.265 video or AAC/MP3 audio yet; waiting")
	}
	g.s.log.Info("hls tracks", "video", trackName(v), "audio", trackName(a))
	for i := range held {
		g.handle(&held[i])
	}
}

func trackName(t *media.Track) string {
	if t == nil {
		return "none"
	}
	return t.Codec.String()
}

// supported reports whether HLS can carry the track.
func supported(t *media.Track) bool {
	switch t.Codec {
	case media.CodecH264, media.CodecH265, media.CodecAAC, media.CodecMP3:
		return true
	}
	return false
}

// sameTrack reports whether two tracks are the same configuration (a
// re-sent sequence header is not a change).
func sameTrack(a, b *media.Track) bool {
	if a == b {
		return true
	}
	return a != nil && b != nil && a.Codec == b.Codec && bytes.Equal(a.Config, b.Config) &&
		a.SampleRate == b.SampleRate && a.Channels == b.Channels
}

func (g *segmenter) warnOnce(key, msg string, args ...any) {
	if g.warned[key] {
		return
	}
	g.warned[key] = true
	g.s.log.Warn(msg, args...)
}

func (g *segmenter) handle(p *media.Packet) {
	if p.Discontinuity {
		g.endPeriod() // the next period's first segment is marked
	}
	switch p.Track.Kind {
	case media.KindVideo:
		if !sameTrack(p.Track, g.vtrack) {
			if !supported(p.Track) {
				g.warnOnce("video:"+p.Track.Codec.String(), "hls: video codec not supported, video skipped", "codec", p.Track.Codec.String())
				return
			}
			if !p.Key {
				return // a new track starts on its keyframe
			}
			g.endPeriod()
			g.vtrack = p.Track
			if g.pendingAudio != nil {
				g.atrack, g.pendingAudio = g.pendingAudio, nil
			}
		} else {
			g.vtrack = p.Track
			if p.Key && g.pendingAudio != nil {
				g.endPeriod()
				g.atrack, g.pendingAudio = g.pendingAudio, nil
			}
		}
	case media.KindAudio:
		if !sameTrack(p.Track, g.atrack) {
			if sameTrack(p.Track, g.pendingAudio) {
				return
			}
			if !supported(p.Track) {
				g.warnOnce("audio:"+p.Track.Codec.String(), "hls: audio codec not supported, audio skipped", "codec", p.Track.Codec.String())
				return
			}
			if g.vtrack != nil {
				// With video, periods start on keyframes: the new audio
				// joins at the next one.
				g.pendingAudio = p.Track
				return
			}
			g.endPeriod()
			g.atrack = p.Track
		} else {
			g.atrack = p.Track
		}
	default:
		return
	}
	if g.mux == nil {
		if g.vtrack != nil && !p.IsVideoKey() {
			return
		}
		if !g.startPeriod(p) {
			return
		}
	}
	video := p.Track.Kind == media.KindVideo
	if video && g.vc == nil || !video && g.ac == nil {
		return // a track whose configuration was unusable
	}
	o := g.out(p.DTS)
	if g.segOpen && (o < g.lastOut-clock90k || o > g.lastOut+10*clock90k) {
		// The publisher's clock jumped: keep the output continuous.
		g.s.log.Warn("hls: timestamp jump, timeline rebased", "from_ms", g.lastOut/90, "to_ms", o/90)
		g.firstDTS, g.base = p.DTS, g.lastOut+max(g.leadDelta, 1)
		o = g.base
	}
	lead := video || g.vc == nil
	if lead && g.segOpen {
		switch {
		case video && p.Key && o-g.segStart >= g.fragment-cutSlack, !video && o-g.segStart >= g.fragment:
			g.cut(o)
		case g.mux.size() > maxSegmentBytes:
			g.warnOnce("oversize", "hls: no keyframe within the segment size limit; cutting without one")
			g.cut(o)
		}
	}
	if !g.segOpen {
		g.segOpen, g.segStart, g.segWall = true, o, time.Now()
	}
	var err error
	if video {
		err = g.mux.video(p, o, o+int64((p.PTS-p.DTS)/time.Microsecond*9/100))
	} else {
		err = g.mux.audio(p, o)
	}
	if err != nil {
		g.warnOnce("mux:"+err.Error(), "hls: packet skipped", "err", err)
		return
	}
	if lead {
		if d := o - g.lastLead; d > 0 && d < clock90k {
			g.leadDelta = d
		}
		g.lastLead = o
	}
	g.lastOut = max(g.lastOut, o)
}

// canDirect reports whether handle(p) is sure to be pure muxing into
// memory (no cut, no file, no track change), so that it may run on the
// publisher's goroutine.
func (g *segmenter) canDirect(p *media.Packet) bool {
	if g.probing || g.mux == nil || !g.segOpen || g.vc == nil || g.pendingAudio != nil ||
		g.mux.size() > maxSegmentBytes/2 {
		return false
	}
	switch p.Track {
	case g.vtrack:
		return !p.Key
	case g.atrack:
		return g.ac != nil
	}
	return false
}

// out maps a packet time onto the playlist's timeline (90 kHz).
func (g *segmenter) out(dts time.Duration) int64 {
	return g.base + int64((dts-g.firstDTS)/time.Microsecond)*9/100
}

// startPeriod opens a muxer for the current tracks, starting at p.
func (g *segmenter) startPeriod(p *media.Packet) bool {
	g.vc, g.ac = nil, nil
	if g.vtrack != nil {
		vc, err := parseVideoConfig(g.vtrack)
		if err != nil {
			g.warnOnce("vconf", "hls: video skipped", "err", err)
		} else {
			g.vc = &vc
		}
	}
	if g.atrack != nil {
		ac, err := parseAudioConfig(g.atrack)
		if err != nil {
			g.warnOnce("aconf", "hls: audio skipped", "err", err)
		} else {
			g.ac = &ac
		}
	}
	if g.vc == nil && g.ac == nil {
		return false
	}
	if g.vc == nil && p.Track.Kind == media.KindVideo {
		return false // start on the audio
	}
	mux, err := newMuxer(g.variant, g.vc, g.ac)
	if err != nil {
		g.warnOnce("muxer", "hls: cannot mux these tracks", "err", err)
		return false
	}
	st := &g.s.state
	g.mux = mux
	g.period = st.NextPeriod
	st.NextPeriod++
	g.initName = ""
	g.initWritten = false
	if g.variant == VariantFMP4 {
		g.initName = "init-" + uitoa(g.period) + ".mp4"
	}
	g.firstDTS = p.DTS
	g.base = max(st.NextTime, minBase)
	if g.base > maxBase {
		g.base = minBase
	}
	g.lastOut, g.lastLead, g.leadDelta = g.base, g.base, 0
	g.pendingDisc = g.pendingDisc || st.NextSeq > 0
	return true
}

// endPeriod closes the open segment and the muxer: the tracks change.
func (g *segmenter) endPeriod() {
	if g.mux == nil {
		return
	}
	if g.segOpen {
		g.cut(g.lastLead + max(g.leadDelta, 1))
	}
	g.mux = nil
}

// cut ends the open segment at end (90 kHz) and publishes it.
func (g *segmenter) cut(end int64) {
	g.segOpen = false
	seq := g.s.state.NextSeq
	data, err := g.mux.segment(seq, end)
	if err != nil {
		g.s.m.diskError(g.s, err)
		g.pendingDisc = true
		return
	}
	if end <= g.segStart || len(data) == 0 {
		return
	}
	dur := float64(end-g.segStart) / clock90k
	g.s.publish(g, data, dur, g.segWall, end)
}

// finish publishes what is left when the publisher leaves.
func (g *segmenter) finish() {
	if g.probing && len(g.probe) > 0 {
		// A stream shorter than the probe: segment what there is.
		g.wantVideo, g.wantAudio = false, false
		last := g.probe[len(g.probe)-1]
		g.probe = g.probe[:len(g.probe)-1]
		g.probePacket(&last)
	}
	g.endPeriod()
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
