package flv

import (
	"encoding/binary"

	"github.com/podiumlive/podium/ingest/media"
)

// FLV tag types: the same numbers as the RTMP message types that carry the
// bodies.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// maxTagSize is the largest body a tag's 24-bit DataSize can declare.
const maxTagSize = 1<<24 - 1

// AppendHeader appends the FLV file header (version 1, the audio and video
// flags) and PreviousTagSize0: what an FLV file or an HTTP-FLV response
// starts with.
func AppendHeader(dst []byte, video, audio bool) []byte {
	var flags byte
	if audio {
		flags |= 4
	}
	if video {
		flags |= 1
	}
	return append(dst, 'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0)
}

// AppendTag appends one FLV tag, its body being head followed by body (so
// a payload is copied once, as rtmp.AppendMessage does), and the tag's
// PreviousTagSize. A body larger than a tag can declare is left out.
func AppendTag(dst []byte, typ byte, ts uint32, head, body []byte) []byte {
	n := len(head) + len(body)
	if n > maxTagSize {
		return dst
	}
	dst = append(dst, typ, byte(n>>16), byte(n>>8), byte(n),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
	dst = append(dst, head...)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(11+n))
}

// Configs tracks, for one peer, which sequence headers it has been sent:
// a track's header goes before its first packet and again whenever the
// track changes (a new *media.Track). RTMP play and push, and HTTP-FLV,
// share it.
type Configs struct {
	video, audio *media.Track
}

// Next returns the sequence header p's track needs first (tag type and
// body), or ok false when the peer has it already or the codec has none.
func (c *Configs) Next(p *media.Packet) (typ byte, body []byte, ok bool) {
	switch p.Track.Kind {
	case media.KindVideo:
		if p.Track == c.video {
			return 0, nil, false
		}
		c.video = p.Track
		body, ok = VideoConfig(p.Track)
		return TagVideo, body, ok
	case media.KindAudio:
		if p.Track == c.audio {
			return 0, nil, false
		}
		c.audio = p.Track
		body, ok = AudioConfig(p.Track)
		return TagAudio, body, ok
	}
	return 0, nil, false
}

// TagWriter turns a reader's packets into FLV tags for one HTTP-FLV
// player: the metadata and each track's sequence header before the first
// packet that needs them, and again when they change.
type TagWriter struct {
	configs Configs
	metaVer uint64
	scratch []byte
}

// AppendMetadata appends m as an onMetaData script tag if its version is
// new to this player.
func (w *TagWriter) AppendMetadata(dst []byte, m media.Metadata, ver uint64) []byte {
	if ver == w.metaVer || m == nil {
		return dst
	}
	w.metaVer = ver
	return AppendTag(dst, TagScript, 0, nil, MetadataBody(m, false))
}

// AppendConfig appends p's track's sequence header if the track is new to
// this player (what AppendPacket sends before p).
func (w *TagWriter) AppendConfig(dst []byte, p *media.Packet) []byte {
	if typ, cfg, ok := w.configs.Next(p); ok {
		dst = AppendTag(dst, typ, Timestamp(p.DTS), nil, cfg)
	}
	return dst
}

// AppendPacket appends p's tag, preceded by its track's sequence header
// when the track is new to this player. Packets of codecs FLV cannot
// carry are left out.
func (w *TagWriter) AppendPacket(dst []byte, p *media.Packet) []byte {
	dst = w.AppendConfig(dst, p)
	ts := Timestamp(p.DTS)
	hdr := *p
	hdr.Data = nil // the body's header only: the payload is appended once, below
	var err error
	typ := byte(TagVideo)
	switch p.Track.Kind {
	case media.KindVideo:
		w.scratch, err = AppendVideo(w.scratch[:0], &hdr)
	case media.KindAudio:
		w.scratch, err = AppendAudio(w.scratch[:0], &hdr)
		typ = TagAudio
	default:
		return dst
	}
	if err != nil {
		return dst
	}
	return AppendTag(dst, typ, ts, w.scratch, p.Data)
}

// TrackMetadata describes tracks as onMetaData properties, for a stream
// whose publisher sent none (a transcoded twin, an RTSP camera): players
// such as mpegts.js read hasVideo/hasAudio and the sizes from it.
func TrackMetadata(video, audio *media.Track) media.Metadata {
	m := media.Metadata{
		{Name: "hasVideo", Value: video != nil},
		{Name: "hasAudio", Value: audio != nil},
	}
	if video != nil {
		if video.Width > 0 && video.Height > 0 {
			m = append(m, media.Property{Name: "width", Value: float64(video.Width)},
				media.Property{Name: "height", Value: float64(video.Height)})
		}
		if video.Codec == media.CodecH264 {
			m = append(m, media.Property{Name: "videocodecid", Value: float64(videoAVC)})
		}
	}
	if audio != nil {
		if flags, ok := AudioFlags(audio); ok {
			m = append(m, media.Property{Name: "audiocodecid", Value: float64(flags >> 4)})
		}
		if audio.SampleRate > 0 {
			m = append(m, media.Property{Name: "audiosamplerate", Value: float64(audio.SampleRate)})
		}
		m = append(m, media.Property{Name: "stereo", Value: audio.Channels >= 2})
	}
	return m
}
