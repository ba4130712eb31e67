package rtmp

import (
	"encoding/binary"
	"fmt"
)

// The inspector is a byte-driven copy of lal v0.37.4's handshake reads and
// ChunkComposer.RunLoop (chunk_composer.go): same basic header forms, same
// message header fields per fmt, same extended timestamp rule, same chunk
// payload size, same Set Chunk Size handling. It must never read the stream
// differently from lal, or a peer could make the two disagree on where a
// message starts. Where lal's reading is odd (a chunk size raised in the
// middle of a message makes lal read past its end), the inspector rejects
// rather than copy the oddity.

type state uint8

const (
	stC0       state = iota // handshake version byte
	stSkip                  // C1 and C2: need bytes left
	stBasic                 // first byte of a chunk basic header
	stBasicExt              // 1 or 2 more csid bytes
	stHeader                // message header: need bytes by fmt
	stExtTS                 // 4-byte extended timestamp
	stPayload               // chunkLeft payload bytes
)

const (
	handshakeVersion = 3
	handshakeLen     = 1536
	defaultChunkSize = 128      // the spec's and lal's until Set Chunk Size
	extendedTS       = 0xFFFFFF // lal reads 4 more bytes when a timestamp is >= this
	keepAMFBuffer    = 4096     // bigger AMF buffers are dropped after their message
	typeAggregate    = 22
	typeUserControl  = 4
	userControlPing  = 6
)

type msgClass uint8

const (
	classInvalid   msgClass = iota
	classControl            // 1-6: first bytes checked
	classAMF                // 15, 17, 18, 20: accumulated and walked
	classOpaque             // 16, 19: shared objects, which lal ignores
	classMedia              // 8, 9
	classAggregate          // 22
)

func classOf(typ uint8) msgClass {
	switch typ {
	case 1, 2, 3, 4, 5, 6:
		return classControl
	case 15, 17, 18, 20:
		return classAMF
	case 16, 19:
		return classOpaque
	case 8, 9:
		return classMedia
	case typeAggregate:
		return classAggregate
	}
	return classInvalid
}

func typeName(typ uint8) string {
	switch typ {
	case 1:
		return "set chunk size"
	case 2:
		return "abort"
	case 3:
		return "acknowledgement"
	case 4:
		return "user control"
	case 5:
		return "window acknowledgement size"
	case 6:
		return "set peer bandwidth"
	case 8:
		return "audio"
	case 9:
		return "video"
	case 15:
		return "amf3 data"
	case 16:
		return "amf3 shared object"
	case 17:
		return "amf3 command"
	case 18:
		return "data"
	case 19:
		return "shared object"
	case 20:
		return "command"
	case typeAggregate:
		return "aggregate"
	}
	return fmt.Sprintf("type %d", typ)
}

// chunkStream is the inspector's view of one csid, as lal's Stream.
type chunkStream struct {
	csid      uint32
	timestamp uint32 // lal's Stream.timestamp: the raw field, then the extended value
	msgLen    uint32
	got       uint32 // payload bytes of the current message so far
	typ       uint8
	hasHeader bool   // a fmt 0 or 1 header was seen
	active    bool   // a message is in progress
	absolute  bool   // the current message's timestamp is absolute (fmt 0)
	abs       uint32 // the last complete message's absolute timestamp
	subHave   uint8
	subSkip   uint32   // aggregate: sub-message body + back pointer bytes left
	subHdr    [11]byte // aggregate: sub-message header being read
	head      [8]byte  // control messages: first payload bytes
	amf       []byte   // AMF messages: the payload, up to msgLen
	media     []byte   // audio, video and aggregate messages, when onMedia is set
}

type inspector struct {
	lim       Limits
	st        state
	need      int // bytes the current fixed-size field needs
	have      int // bytes of it in buf
	buf       [11]byte
	fmt       uint8
	cur       int // index of the current chunk stream
	chunkLeft uint32
	chunkSize uint32
	streams   []chunkStream
	published bool
	pending   uint64 // declared bytes of unfinished messages, all csids
	stack     []amfFrame
	// onMessage, when set (tests), sees every accepted complete message.
	onMessage func(csid uint32, typ uint8, length uint32)
	// onAMF, when set (the push client), sees the body of every accepted
	// AMF0 command and data message; onControl the first bytes of every
	// control message. Neither may keep the slice.
	onAMF     func(typ uint8, body []byte)
	onControl func(typ uint8, head []byte)
	// onMedia, when set (the pull client), gets every accepted audio and
	// video message (aggregates split) with its absolute timestamp in
	// milliseconds. It may not keep the slice.
	onMedia func(typ uint8, ts uint32, body []byte) error
}

func newInspector(l Limits) inspector {
	return inspector{
		lim:       l,
		chunkSize: defaultChunkSize,
		streams:   make([]chunkStream, 0, min(l.MaxChunkStreams, 8)),
		stack:     make([]amfFrame, l.MaxAMFDepth),
	}
}

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrViolation, fmt.Sprintf(format, args...))
}

// feed inspects the next bytes of the stream, in order.
func (in *inspector) feed(b []byte) error {
	for i := 0; i < len(b); {
		switch in.st {
		case stC0:
			if b[i] != handshakeVersion {
				return violation("handshake version %d, want %d", b[i], handshakeVersion)
			}
			i++
			in.st, in.need = stSkip, 2*handshakeLen // C1, then C2 after lal's S0S1S2
		case stSkip:
			k := min(in.need, len(b)-i)
			i += k
			in.need -= k
			if in.need == 0 {
				in.st = stBasic
			}
		case stBasic:
			c := b[i]
			i++
			in.fmt = c >> 6
			switch c & 0x3f {
			case 0:
				in.st, in.need, in.have = stBasicExt, 1, 0
			case 1:
				in.st, in.need, in.have = stBasicExt, 2, 0
			default:
				if err := in.beginChunk(uint32(c & 0x3f)); err != nil {
					return err
				}
			}
		case stBasicExt, stHeader, stExtTS:
			k := copy(in.buf[in.have:in.need], b[i:])
			i += k
			in.have += k
			if in.have < in.need {
				continue
			}
			var err error
			switch in.st {
			case stBasicExt:
				csid := 64 + uint32(in.buf[0])
				if in.need == 2 {
					csid += uint32(in.buf[1]) * 256
				}
				err = in.beginChunk(csid)
			case stHeader:
				err = in.applyHeader()
			default:
				in.streams[in.cur].timestamp = binary.BigEndian.Uint32(in.buf[:4])
				err = in.startPayload()
			}
			if err != nil {
				return err
			}
		case stPayload:
			k := min(uint32(len(b)-i), in.chunkLeft)
			if err := in.payload(b[i : i+int(k)]); err != nil {
				return err
			}
			i += int(k)
		}
	}
	return nil
}

func (in *inspector) beginChunk(csid uint32) error {
	idx := -1
	if in.cur < len(in.streams) && in.streams[in.cur].csid == csid {
		idx = in.cur
	} else {
		for j := range in.streams {
			if in.streams[j].csid == csid {
				idx = j
				break
			}
		}
	}
	if idx < 0 {
		if len(in.streams) >= in.lim.MaxChunkStreams {
			return violation("chunk stream %d is one more than the %d allowed", csid, in.lim.MaxChunkStreams)
		}
		in.streams = append(in.streams, chunkStream{csid: csid})
		idx = len(in.streams) - 1
	}
	in.cur = idx
	in.need, in.have = [4]int{11, 7, 3, 0}[in.fmt], 0
	if in.need == 0 {
		return in.applyHeader()
	}
	in.st = stHeader
	return nil
}

func be24(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

// applyHeader runs once the message header is complete: lal acts on it (and
// grows its buffer to the declared length) as soon as it has these bytes.
func (in *inspector) applyHeader() error {
	s := &in.streams[in.cur]
	switch in.fmt {
	case 0, 1:
		if s.active {
			return violation("new message header on chunk stream %d before its %d-byte %s message is complete",
				s.csid, s.msgLen, typeName(s.typ))
		}
		s.timestamp = be24(in.buf[0:])
		s.msgLen = be24(in.buf[3:])
		s.typ = in.buf[6]
		s.hasHeader = true
		s.absolute = in.fmt == 0
	default:
		if !s.hasHeader {
			return violation("fmt %d chunk on chunk stream %d, which has no message header", in.fmt, s.csid)
		}
		if in.fmt == 2 {
			s.timestamp = be24(in.buf[0:])
		}
		if !s.active {
			s.absolute = false // a new message with the previous delta
		}
	}
	if !s.active {
		if err := in.beginMessage(s); err != nil {
			return err
		}
	}
	if s.timestamp >= extendedTS {
		in.st, in.need, in.have = stExtTS, 4, 0
		return nil
	}
	return in.startPayload()
}

func (in *inspector) beginMessage(s *chunkStream) error {
	class := classOf(s.typ)
	limit := in.lim.MaxCommandSize
	switch class {
	case classInvalid:
		return violation("message type %d on chunk stream %d is not allowed", s.typ, s.csid)
	case classMedia, classAggregate:
		if !in.published {
			return violation("%s message before publish", typeName(s.typ))
		}
		if class == classMedia && s.msgLen < 2 {
			return violation("%s message of %d bytes", typeName(s.typ), s.msgLen)
		}
		limit = in.lim.MaxMediaSize
	}
	if int64(s.msgLen) > int64(limit) {
		return violation("%s message of %d bytes exceeds %d", typeName(s.typ), s.msgLen, limit)
	}
	budget := uint64(in.lim.MaxCommandSize)
	if in.published {
		budget += uint64(in.lim.MaxMediaSize)
	}
	if in.pending+uint64(s.msgLen) > budget {
		return violation("unfinished messages of %d bytes exceed %d", in.pending+uint64(s.msgLen), budget)
	}
	in.pending += uint64(s.msgLen)
	s.active, s.got = true, 0
	switch class {
	case classAMF:
		if cap(s.amf) < int(s.msgLen) {
			s.amf = make([]byte, 0, s.msgLen)
		}
		s.amf = s.amf[:0]
	case classAggregate:
		s.subHave, s.subSkip = 0, 0
	}
	if in.onMedia != nil && (class == classMedia || class == classAggregate) {
		if cap(s.media) < int(s.msgLen) {
			s.media = make([]byte, 0, s.msgLen)
		}
		s.media = s.media[:0]
	}
	return nil
}

// startPayload sizes the chunk's payload exactly as lal does: the whole
// message when it fits the chunk size, else what is left, up to a chunk.
func (in *inspector) startPayload() error {
	s := &in.streams[in.cur]
	needed := s.msgLen
	if s.msgLen > in.chunkSize {
		needed = min(s.msgLen-s.got, in.chunkSize)
	}
	if s.got+needed > s.msgLen {
		return violation("chunk size raised to %d in the middle of the %d-byte message on chunk stream %d",
			in.chunkSize, s.msgLen, s.csid)
	}
	in.chunkLeft = needed
	in.st = stPayload
	if needed == 0 { // an empty message: lal completes it at once
		in.st = stBasic
		return in.complete(s)
	}
	return nil
}

// payload takes the chunk payload bytes in p (at most chunkLeft). Audio and
// video bytes are only counted.
func (in *inspector) payload(p []byte) error {
	s := &in.streams[in.cur]
	switch classOf(s.typ) {
	case classAMF:
		s.amf = append(s.amf, p...) // within cap: msgLen was reserved
	case classControl:
		if s.got < uint32(len(s.head)) {
			copy(s.head[s.got:], p)
		}
	case classAggregate:
		if err := in.aggregate(s, p); err != nil {
			return err
		}
	}
	if in.onMedia != nil {
		if c := classOf(s.typ); c == classMedia || c == classAggregate {
			s.media = append(s.media, p...) // within cap: msgLen was reserved
		}
	}
	s.got += uint32(len(p))
	in.chunkLeft -= uint32(len(p))
	if in.chunkLeft == 0 {
		in.st = stBasic
		if s.got == s.msgLen {
			return in.complete(s)
		}
	}
	return nil
}
