package rtmp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// AMF0 markers the walker knows. RTMP encoders (ffmpeg, OBS, librtmp,
// hardware boxes) use number, boolean, string, long string, object, null,
// undefined, ECMA array, strict array and the object-end marker; reference and
// date are cheap fixed-size values that Flash-era clients may still send, so
// they are accepted too (lal stops with an error on them, which is harmless).
//
// Rejected: movieclip (0x04), unsupported (0x0d), recordset (0x0e), XML
// document (0x0f), typed object (0x10) and the AMF3 switch (0x11). No encoder
// we target sends them, lal cannot decode them, and an AMF3 value nests in ways
// the walker could only bound with a whole AMF3 parser: a message that holds
// one is rejected rather than passed on opaque.
const (
	amfNumber      = 0x00
	amfBoolean     = 0x01
	amfString      = 0x02
	amfObject      = 0x03
	amfNull        = 0x05
	amfUndefined   = 0x06
	amfReference   = 0x07
	amfECMAArray   = 0x08
	amfObjectEnd   = 0x09
	amfStrictArray = 0x0a
	amfDate        = 0x0b
	amfLongString  = 0x0c
	amfUnsupported = 0x0d
)

var (
	errAMFShort = errors.New("amf0: truncated value")
	errAMFDepth = errors.New("amf0: nesting too deep")
)

// amfMode says whose reading of the bytes the walker follows.
type amfMode uint8

const (
	// amfStandard follows the AMF0 specification: an ECMA array ends at the
	// object-end marker and its count is only a hint (OBS writes a count
	// that does not always match, so a mismatch is tolerated).
	amfStandard amfMode = iota
	// amfLal follows lal v0.37.4's amf0.go: an ECMA array is exactly count
	// pairs followed by an optional end marker, and only lal's markers parse.
	// When a count lies, lal's view of the nesting differs from the standard
	// one, so both views are bounded.
	amfLal
)

type frameKind uint8

const (
	frameKeyed   frameKind = iota // object, or ECMA array read to its end marker
	frameCounted                  // ECMA array read as count pairs (lal)
	frameStrict                   // strict array: count values without keys
)

type amfFrame struct {
	kind frameKind
	left uint32
}

// walkAMF0 checks that b is a sequence of well-formed AMF0 values whose
// containers nest at most len(stack) deep, without recursion and without
// allocating: stack is the caller's, reused across messages. Counts of
// strict and ECMA arrays only drive a countdown, never an allocation. It
// returns the first value when it is a string (the command name), as a slice
// of b.
func walkAMF0(b []byte, stack []amfFrame, mode amfMode) (name []byte, err error) {
	pos, depth, values := 0, 0, 0
	for {
		if depth == 0 {
			if pos == len(b) {
				return name, nil
			}
		} else {
			top := &stack[depth-1]
			switch top.kind {
			case frameKeyed, frameCounted:
				if top.kind == frameCounted && top.left == 0 {
					if isObjectEnd(b[pos:]) {
						pos += 3
					}
					depth--
					continue
				}
				if top.kind == frameKeyed && isObjectEnd(b[pos:]) {
					pos += 3
					depth--
					continue
				}
				if top.kind == frameCounted {
					top.left--
				}
				if len(b)-pos < 2 {
					return nil, errAMFShort
				}
				kl := int(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
				if kl > len(b)-pos {
					return nil, errAMFShort
				}
				pos += kl
			case frameStrict:
				if top.left == 0 {
					depth--
					continue
				}
				top.left--
			}
		}

		if pos >= len(b) {
			return nil, errAMFShort
		}
		marker := b[pos]
		pos++
		var size int // fixed bytes after the marker
		push := false
		kind, count := frameKeyed, uint32(0)
		switch marker {
		case amfNumber:
			size = 8
		case amfBoolean:
			size = 1
		case amfNull, amfUndefined:
		case amfString, amfLongString:
			n, hdr := 0, 2
			if marker == amfLongString {
				if mode == amfLal && depth > 0 {
					// lal reads a long string only as a top-level value
					// (ReadString), not inside an object or array.
					return nil, fmt.Errorf("amf0: long string inside a container, unknown to lal")
				}
				hdr = 4
			}
			if len(b)-pos < hdr {
				return nil, errAMFShort
			}
			if hdr == 2 {
				n = int(binary.BigEndian.Uint16(b[pos:]))
			} else if l := binary.BigEndian.Uint32(b[pos:]); uint64(l) <= uint64(len(b)) {
				n = int(l)
			} else {
				return nil, errAMFShort
			}
			if n > len(b)-pos-hdr {
				return nil, errAMFShort
			}
			if depth == 0 && values == 0 {
				name = b[pos+hdr : pos+hdr+n]
			}
			size = hdr + n
		case amfObject:
			push = true
		case amfECMAArray, amfStrictArray:
			if len(b)-pos < 4 {
				return nil, errAMFShort
			}
			count = binary.BigEndian.Uint32(b[pos:])
			pos += 4
			push = true
			switch {
			case marker == amfStrictArray:
				kind = frameStrict
			case mode == amfLal:
				kind = frameCounted
			}
		case amfReference, amfDate:
			if mode == amfLal {
				return nil, fmt.Errorf("amf0: marker 0x%02x unknown to lal", marker)
			}
			size = 2
			if marker == amfDate {
				size = 10
			}
		case amfUnsupported:
			if mode != amfLal {
				return nil, fmt.Errorf("amf0: marker 0x%02x not allowed", marker)
			}
		default:
			return nil, fmt.Errorf("amf0: marker 0x%02x not allowed", marker)
		}
		if size > len(b)-pos {
			return nil, errAMFShort
		}
		pos += size
		if depth == 0 {
			values++
		}
		if push {
			if depth == len(stack) {
				return nil, errAMFDepth
			}
			stack[depth] = amfFrame{kind: kind, left: count}
			depth++
		}
	}
}

func isObjectEnd(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && b[2] == amfObjectEnd
}
