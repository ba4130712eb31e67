package rtmp

// What the inspector does with a whole message: aggregates split into their
// sub-messages, AMF commands and data checked for nesting and size, media
// handed on with absolute timestamps. inspector.go reads the chunks.

import (
	"encoding/binary"
	"errors"
)

// aggregate checks the sub-messages of an aggregate message as its bytes
// arrive: each has an 11-byte header, must be audio or video of at least 2
// bytes, and must fit, with its 4-byte back pointer, in the message. lal
// hands each sub-message to doMsg, so a command or control sub-message would
// bypass every other rule; they are rejected.
func (in *inspector) aggregate(s *chunkStream, p []byte) error {
	pos := s.got
	for len(p) > 0 {
		if s.subSkip > 0 {
			k := min(uint32(len(p)), s.subSkip)
			p, pos, s.subSkip = p[k:], pos+k, s.subSkip-k
			continue
		}
		k := copy(s.subHdr[s.subHave:], p)
		p, pos, s.subHave = p[k:], pos+uint32(k), s.subHave+uint8(k)
		if int(s.subHave) < len(s.subHdr) {
			return nil
		}
		s.subHave = 0
		typ, n := s.subHdr[0], be24(s.subHdr[1:])
		if classOf(typ) != classMedia {
			return violation("aggregate sub-message of type %d (only audio and video are allowed)", typ)
		}
		if n < 2 {
			return violation("aggregate %s sub-message of %d bytes", typeName(typ), n)
		}
		if uint64(n)+4 > uint64(s.msgLen-pos) {
			return violation("aggregate sub-message of %d bytes overruns its message", n)
		}
		s.subSkip = n + 4
	}
	return nil
}

// complete runs when the last byte of a message has been inspected: lal
// handles the message as soon as it has that byte.
func (in *inspector) complete(s *chunkStream) error {
	in.pending -= uint64(s.msgLen)
	s.active = false
	if s.absolute {
		s.abs = s.timestamp
	} else {
		s.abs += s.timestamp
	}
	n := s.msgLen
	want := uint32(0) // the spec's sizes; lal indexes type 4 blindly
	switch s.typ {
	case 1, 2, 3, 5:
		want = 4
	case 6:
		want = 5
	case typeUserControl:
		want = 2
		if n >= 2 && binary.BigEndian.Uint16(s.head[:2]) == userControlPing {
			want = 6
		}
	}
	if n < want {
		return violation("%s message of %d bytes, want at least %d", typeName(s.typ), n, want)
	}
	switch s.typ {
	case 1:
		v := binary.BigEndian.Uint32(s.head[:4])
		if v == 0 || int64(v) > int64(in.lim.MaxChunkSize) {
			return violation("chunk size %d outside 1..%d", v, in.lim.MaxChunkSize)
		}
		in.chunkSize = v
	case 15, 17, 18, 20:
		if err := in.checkAMF(s); err != nil {
			return err
		}
	}
	if in.onControl != nil && classOf(s.typ) == classControl {
		in.onControl(s.typ, s.head[:min(int(n), len(s.head))])
	}
	switch s.typ {
	case typeAggregate:
		if s.subHave != 0 || s.subSkip != 0 {
			return violation("aggregate message of %d bytes ends inside a sub-message", n)
		}
	}
	if in.onMedia != nil {
		if err := in.deliverMedia(s); err != nil {
			return err
		}
	}
	if in.onMessage != nil {
		in.onMessage(s.csid, s.typ, n)
	}
	return nil
}

func (in *inspector) checkAMF(s *chunkStream) error {
	body := s.amf
	if s.typ == 15 || s.typ == 17 {
		// AMF0 after one byte (0), which lal skips for type 17.
		if len(body) == 0 {
			return violation("empty %s message", typeName(s.typ))
		}
		body = body[1:]
	}
	name, err := walkAMF0(body, in.stack, amfStandard)
	if err != nil {
		return violation("%s message of %d bytes: %v", typeName(s.typ), s.msgLen, err)
	}
	if name == nil {
		return violation("%s message of %d bytes does not start with a name", typeName(s.typ), s.msgLen)
	}
	if _, err := walkAMF0(body, in.stack, amfLal); errors.Is(err, errAMFDepth) {
		return violation("%s message of %d bytes: %v as lal reads it", typeName(s.typ), s.msgLen, err)
	}
	if (s.typ == 20 || s.typ == 17) && string(name) == "publish" {
		in.published = true
	}
	if in.onAMF != nil && (s.typ == 20 || s.typ == 18) {
		in.onAMF(s.typ, body)
	}
	if cap(s.amf) > keepAMFBuffer {
		s.amf = nil
	} else {
		s.amf = s.amf[:0]
	}
	return nil
}

// deliverMedia hands a complete audio or video message to onMedia, or
// each sub-message of an aggregate (already checked by aggregate): a
// sub-message's timestamp is the aggregate's plus its offset from the
// first sub-message's.
func (in *inspector) deliverMedia(s *chunkStream) error {
	switch classOf(s.typ) {
	case classMedia:
		return in.onMedia(s.typ, s.abs, s.media)
	case classAggregate:
		b := s.media
		var base uint32
		for first := true; len(b) >= 11; first = false {
			typ, n := b[0], be24(b[1:])
			ts := be24(b[4:]) | uint32(b[7])<<24
			if first {
				base = ts
			}
			if err := in.onMedia(typ, s.abs+ts-base, b[11:11+n]); err != nil {
				return err
			}
			b = b[11+n+4:]
		}
	}
	return nil
}
