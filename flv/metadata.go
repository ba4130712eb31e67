package flv

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/podiumlive/podium/ingest/media"
)

// Limits of ParseMetadata. Depth counts containers: the onMetaData object
// is depth 1. Properties counts every name/value pair seen, kept or
// skipped, at any depth.
const (
	MaxMetadataDepth      = 8
	MaxMetadataProperties = 1024
)

// AMF0 type markers.
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
	amfStrictArray = 0x0A
	amfDate        = 0x0B
	amfLongString  = 0x0C
	amfUnsupported = 0x0D
	amfXMLDocument = 0x0F
	amfTypedObject = 0x10
)

// ParseMetadata parses a data message body (RTMP type 18, FLV script tag):
// "@setDataFrame", "onMetaData", value or "onMetaData", value, where value
// is an AMF0 object or ECMA array. Other data messages give ErrNotMetadata.
//
// Only the top-level properties whose values are numbers, booleans,
// strings (short, long or XML) or null/undefined are kept, in order, as
// float64, bool, string or nil. Properties holding objects, arrays, dates,
// references or typed objects are skipped with their contents: nothing is
// flattened. Nesting deeper than MaxMetadataDepth or more than
// MaxMetadataProperties properties in all is an error, so the cost is
// bounded by the body's length and the stack by the depth. A missing
// end-of-object marker at the end of the body is tolerated (some encoders
// omit it after an ECMA array).
func ParseMetadata(body []byte) (media.Metadata, error) {
	r := amfReader{buf: body}
	name, err := r.string()
	if err != nil {
		return nil, fmt.Errorf("flv: metadata name: %w", err)
	}
	if name == "@setDataFrame" {
		if name, err = r.string(); err != nil {
			return nil, fmt.Errorf("flv: metadata name after @setDataFrame: %w", err)
		}
	}
	if name != "onMetaData" {
		return nil, ErrNotMetadata
	}
	if r.pos >= len(body) {
		return nil, fmt.Errorf("flv: onMetaData without value")
	}
	var m media.Metadata
	switch marker := body[r.pos]; marker {
	case amfObject:
		r.pos++
	case amfECMAArray:
		if err := r.skip(5); err != nil { // marker, approximate count
			return nil, fmt.Errorf("flv: onMetaData: %w", err)
		}
	default:
		return nil, fmt.Errorf("flv: onMetaData value: AMF0 type %#02x is not an object", marker)
	}
	err = r.properties(1, func(name string, v any, keep bool) {
		if keep {
			m = append(m, media.Property{Name: name, Value: v})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("flv: onMetaData: %w", err)
	}
	return m, nil
}

type amfReader struct {
	buf   []byte
	pos   int
	props int
	// objects keeps nested objects as map[string]any (commands: an RTMP
	// 302's info.ex); metadata skips them.
	objects bool
}

func (r *amfReader) need(n int) error {
	if n < 0 || r.pos+n > len(r.buf) || r.pos+n < r.pos {
		return fmt.Errorf("truncated at byte %d", r.pos)
	}
	return nil
}

// string reads a string value (marker and body).
func (r *amfReader) string() (string, error) {
	if err := r.need(1); err != nil {
		return "", err
	}
	if r.buf[r.pos] != amfString {
		return "", fmt.Errorf("AMF0 type %#02x at byte %d is not a string", r.buf[r.pos], r.pos)
	}
	r.pos++
	return r.utf8(2)
}

// utf8 reads a string of a 2- or 4-byte length (no marker).
func (r *amfReader) utf8(lenSize int) (string, error) {
	if err := r.need(lenSize); err != nil {
		return "", err
	}
	var n int
	if lenSize == 2 {
		n = int(binary.BigEndian.Uint16(r.buf[r.pos:]))
	} else {
		n = int(binary.BigEndian.Uint32(r.buf[r.pos:]))
	}
	r.pos += lenSize
	if err := r.need(n); err != nil {
		return "", err
	}
	s := string(r.buf[r.pos : r.pos+n])
	r.pos += n
	return s, nil
}

// properties reads name/value pairs up to the end-of-object marker (or the
// end of the body) and hands each to f; keep tells whether the value is a
// scalar f may keep.
func (r *amfReader) properties(depth int, f func(name string, v any, keep bool)) error {
	if depth > MaxMetadataDepth {
		return fmt.Errorf("nested deeper than %d", MaxMetadataDepth)
	}
	for r.pos < len(r.buf) {
		if r.pos+3 <= len(r.buf) && r.buf[r.pos] == 0 && r.buf[r.pos+1] == 0 && r.buf[r.pos+2] == amfObjectEnd {
			r.pos += 3
			return nil
		}
		name, err := r.utf8(2)
		if err != nil {
			return err
		}
		if r.props++; r.props > MaxMetadataProperties {
			return fmt.Errorf("more than %d properties", MaxMetadataProperties)
		}
		v, keep, err := r.value(depth)
		if err != nil {
			return fmt.Errorf("property %q: %w", name, err)
		}
		f(name, v, keep)
	}
	return nil
}

// value reads one value; containers and other non-scalars are skipped and
// reported with keep=false.
func (r *amfReader) value(depth int) (v any, keep bool, err error) {
	if err := r.need(1); err != nil {
		return nil, false, err
	}
	marker := r.buf[r.pos]
	r.pos++
	skip := func(string, any, bool) {}
	switch marker {
	case amfNumber:
		if err := r.need(8); err != nil {
			return nil, false, err
		}
		v = math.Float64frombits(binary.BigEndian.Uint64(r.buf[r.pos:]))
		r.pos += 8
		return v, true, nil
	case amfBoolean:
		if err := r.need(1); err != nil {
			return nil, false, err
		}
		r.pos++
		return r.buf[r.pos-1] != 0, true, nil
	case amfString:
		s, err := r.utf8(2)
		return s, err == nil, err
	case amfLongString, amfXMLDocument:
		s, err := r.utf8(4)
		return s, err == nil, err
	case amfNull, amfUndefined:
		return nil, true, nil
	case amfUnsupported:
		return nil, false, nil
	case amfReference:
		return nil, false, r.skip(2)
	case amfDate:
		return nil, false, r.skip(10)
	case amfObject:
		if r.objects {
			m := map[string]any{}
			err := r.properties(depth+1, func(k string, v any, keep bool) {
				if keep {
					m[k] = v
				}
			})
			return m, err == nil, err
		}
		return nil, false, r.properties(depth+1, skip)
	case amfTypedObject:
		if _, err := r.utf8(2); err != nil {
			return nil, false, err
		}
		return nil, false, r.properties(depth+1, skip)
	case amfECMAArray:
		if err := r.skip(4); err != nil {
			return nil, false, err
		}
		return nil, false, r.properties(depth+1, skip)
	case amfStrictArray:
		if err := r.need(4); err != nil {
			return nil, false, err
		}
		n := int64(binary.BigEndian.Uint32(r.buf[r.pos:]))
		r.pos += 4
		if depth+1 > MaxMetadataDepth {
			return nil, false, fmt.Errorf("nested deeper than %d", MaxMetadataDepth)
		}
		for i := int64(0); i < n; i++ {
			if r.props++; r.props > MaxMetadataProperties {
				return nil, false, fmt.Errorf("more than %d properties", MaxMetadataProperties)
			}
			if _, _, err := r.value(depth + 1); err != nil {
				return nil, false, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("AMF0 type %#02x not supported", marker)
}

func (r *amfReader) skip(n int) error {
	if err := r.need(n); err != nil {
		return err
	}
	r.pos += n
	return nil
}

// MetadataBody returns a data message body carrying m: "@setDataFrame"
// first when setDataFrame (what a publisher sends, so use it for pushes),
// then "onMetaData" and an ECMA array (what a server sends to players, and
// what FFmpeg and OBS write). float64, float32, integer types, bool, string
// and nil are written as AMF0 number, boolean, string (long string above
// 65535 bytes) and null; values of any other type are written as null.
// Properties whose names exceed 65535 bytes are left out.
func MetadataBody(m media.Metadata, setDataFrame bool) []byte {
	b := make([]byte, 0, 64+32*len(m))
	if setDataFrame {
		b = appendAMFString(b, "@setDataFrame")
	}
	b = appendAMFString(b, "onMetaData")
	n := 0
	for _, p := range m {
		if len(p.Name) <= math.MaxUint16 {
			n++
		}
	}
	b = append(b, amfECMAArray)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for _, p := range m {
		if len(p.Name) > math.MaxUint16 {
			continue
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Name)))
		b = append(b, p.Name...)
		b = appendAMFValue(b, p.Value)
	}
	return append(b, 0, 0, amfObjectEnd)
}

func appendAMFString(b []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		b = append(b, amfLongString)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	b = append(b, amfString)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendAMFNumber(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, amfNumber), math.Float64bits(f))
}

func appendAMFValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		return appendAMFNumber(b, v)
	case float32:
		return appendAMFNumber(b, float64(v))
	case int:
		return appendAMFNumber(b, float64(v))
	case int64:
		return appendAMFNumber(b, float64(v))
	case int32:
		return appendAMFNumber(b, float64(v))
	case uint:
		return appendAMFNumber(b, float64(v))
	case uint64:
		return appendAMFNumber(b, float64(v))
	case uint32:
		return appendAMFNumber(b, float64(v))
	case bool:
		if v {
			return append(b, amfBoolean, 1)
		}
		return append(b, amfBoolean, 0)
	case string:
		return appendAMFString(b, v)
	}
	return append(b, amfNull)
}
