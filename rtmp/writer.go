package rtmp

import (
	"encoding/binary"
	"time"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
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

	configs flv.Configs
	metaVer uint64
	scratch []byte
	hdr     media.Packet
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
	return w.appendMessage(w.AppendConfig(dst, p), p)
}

// AppendConfig appends p's track's sequence header if the track is new to
// this peer (what AppendPacket sends before p).
func (w *PacketWriter) AppendConfig(dst []byte, p *media.Packet) []byte {
	typ, cfg, ok := w.configs.Next(p)
	if !ok {
		return dst
	}
	csid := CsidVideo
	if typ == TypeAudio {
		csid = CsidAudio
	}
	return AppendMessage(dst, csid, typ, Timestamp(p.DTS), ChunkSize, nil, cfg)
}

// appendMessage appends p's own message: the same bytes for every peer.
func (w *PacketWriter) appendMessage(dst []byte, p *media.Packet) []byte {
	ts := Timestamp(p.DTS)
	var err error
	switch p.Track.Kind {
	case media.KindVideo:
		if w.scratch, err = flv.AppendVideo(w.scratch[:0], w.header(p)); err != nil {
			return dst
		}
		return AppendMessage(dst, CsidVideo, TypeVideo, ts, ChunkSize, w.scratch, p.Data)
	case media.KindAudio:
		if w.scratch, err = flv.AppendAudio(w.scratch[:0], w.header(p)); err != nil {
			return dst
		}
		return AppendMessage(dst, CsidAudio, TypeAudio, ts, ChunkSize, w.scratch, p.Data)
	}
	return dst
}

// PacketCache holds the last packet's message (appendMessage's bytes) for
// every sink of one stream: chunked once, not once per player and slave,
// as nginx-rtmp shares one chain among its subscribers. Only DirectFuncs
// use it, and the hub calls those one at a time under the stream's lock.
type PacketCache struct {
	w     PacketWriter
	key   media.Packet // holds key.Data: its address can't be reused while cached
	valid bool
	msg   []byte
}

type packetCacheKey struct{}

// streamPacketCache returns st's PacketCache.
func streamPacketCache(st *stream.Stream) *PacketCache {
	return st.Shared(packetCacheKey{}, func() any { return new(PacketCache) }).(*PacketCache)
}

// message returns p's message bytes, valid until the next call. Two
// packets with the same track, times, key flag and payload (the same
// bytes in memory) have the same message, so they may share it.
func (c *PacketCache) message(p *media.Packet) []byte {
	k := &c.key
	if c.valid && k.Track == p.Track && k.DTS == p.DTS && k.PTS == p.PTS && k.Key == p.Key &&
		len(k.Data) == len(p.Data) && (len(p.Data) == 0 || &k.Data[0] == &p.Data[0]) {
		return c.msg
	}
	if cap(c.msg) > 256<<10 {
		c.msg = nil // a huge keyframe: don't keep its buffer for the whole stream
	}
	c.msg = c.w.appendMessage(c.msg[:0], p)
	c.key, c.valid = *p, true
	return c.msg
}

// header is p without its payload: the flv package then appends just the
// tag header, and AppendMessage copies the payload once, straight into the
// chunks.
func (w *PacketWriter) header(p *media.Packet) *media.Packet {
	w.hdr = *p
	w.hdr.Data = nil
	return &w.hdr
}
