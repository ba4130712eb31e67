package rtmp

import (
	"encoding/binary"
	"time"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
)

// Chunk stream ids and the message stream id Podium writes media on; the
// same as lal's (CsidAudio/CsidVideo/CsidAmf, Msid1), so a lal session's own
// control messages never share a chunk stream with ours.
const (
	CsidData  = 5
	CsidAudio = 6
	CsidVideo = 7
	StreamID  = 1

	TypeAudio = 8
	TypeVideo = 9
	TypeData  = 18

	// ChunkSize is what lal announces (SetChunkSize 4096) on both server
	// and client sessions, and so what we must chunk at.
	ChunkSize = 4096
)

// AppendMessage appends one RTMP message, head followed by body, cut into
// chunks of chunkSize: a type 0 header, then type 3 continuations (with the
// extended timestamp repeated, as lal and VLC expect).
//
// lal's Message2Chunks allocates a new buffer per message; this appends into
// the caller's, which play and forward reuse across a whole batch, so a
// relayed packet costs one copy and no allocation per player.
func AppendMessage(dst []byte, csid int, typ uint8, ts uint32, chunkSize int, head, body []byte) []byte {
	n := len(head) + len(body)
	ext := ts >= 0xFFFFFF
	basic := func(fmt byte) {
		dst = append(dst, fmt<<6|byte(csid))
	}
	basic(0)
	t24 := ts
	if ext {
		t24 = 0xFFFFFF
	}
	dst = append(dst, byte(t24>>16), byte(t24>>8), byte(t24),
		byte(n>>16), byte(n>>8), byte(n), typ)
	dst = binary.LittleEndian.AppendUint32(dst, StreamID)
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	left := chunkSize
	for _, part := range [2][]byte{head, body} {
		for len(part) > 0 {
			if left == 0 {
				basic(3)
				if ext {
					dst = binary.BigEndian.AppendUint32(dst, ts)
				}
				left = chunkSize
			}
			k := min(left, len(part))
			dst = append(dst, part[:k]...)
			part = part[k:]
			left -= k
		}
	}
	return dst
}

// PacketWriter turns a reader's packets into RTMP messages for one peer (a
// player or a push): it sends the metadata and each track's sequence header
// before the first packet that needs them, and again when they change.
type PacketWriter struct {
	// SetDataFrame prefixes metadata with "@setDataFrame", as a publisher
	// sends it (for pushes); players get a bare "onMetaData".
	SetDataFrame bool

	video, audio *media.Track
	metaVer      uint64
	scratch      []byte
	hdr          media.Packet
}

// Timestamp converts a packet time to RTMP milliseconds.
func Timestamp(d time.Duration) uint32 { return flv.Timestamp(d) }

// AppendMetadata appends m as a data message if its version is new.
func (w *PacketWriter) AppendMetadata(dst []byte, m media.Metadata, ver uint64) []byte {
	if ver == w.metaVer || m == nil {
		return dst
	}
	w.metaVer = ver
	return AppendMessage(dst, CsidData, TypeData, 0, ChunkSize, nil, flv.MetadataBody(m, w.SetDataFrame))
}

// AppendPacket appends p, preceded by its track's sequence header when the
// track is new to this peer. Packets of codecs FLV cannot carry are skipped.
func (w *PacketWriter) AppendPacket(dst []byte, p *media.Packet) []byte {
	ts := Timestamp(p.DTS)
	var err error
	switch p.Track.Kind {
	case media.KindVideo:
		if p.Track != w.video {
			w.video = p.Track
			if cfg, ok := flv.VideoConfig(p.Track); ok {
				dst = AppendMessage(dst, CsidVideo, TypeVideo, ts, ChunkSize, nil, cfg)
			}
		}
		if w.scratch, err = flv.AppendVideo(w.scratch[:0], w.header(p)); err != nil {
			return dst
		}
		return AppendMessage(dst, CsidVideo, TypeVideo, ts, ChunkSize, w.scratch, p.Data)
	case media.KindAudio:
		if p.Track != w.audio {
			w.audio = p.Track
			if cfg, ok := flv.AudioConfig(p.Track); ok {
				dst = AppendMessage(dst, CsidAudio, TypeAudio, ts, ChunkSize, nil, cfg)
			}
		}
		if w.scratch, err = flv.AppendAudio(w.scratch[:0], w.header(p)); err != nil {
			return dst
		}
		return AppendMessage(dst, CsidAudio, TypeAudio, ts, ChunkSize, w.scratch, p.Data)
	}
	return dst
}

// header is p without its payload: the flv package then appends just the
// tag header, and AppendMessage copies the payload once, straight into the
// chunks.
func (w *PacketWriter) header(p *media.Packet) *media.Packet {
	w.hdr = *p
	w.hdr.Data = nil
	return &w.hdr
}
