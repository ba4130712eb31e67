package flv

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// amf builds AMF0 test input.
type amf []byte

func (a amf) str(s string) amf {
	a = append(a, amfString)
	a = binary.BigEndian.AppendUint16(a, uint16(len(s)))
	return append(a, s...)
}

func (a amf) key(s string) amf {
	a = binary.BigEndian.AppendUint16(a, uint16(len(s)))
	return append(a, s...)
}

func (a amf) num(f float64) amf {
	return binary.BigEndian.AppendUint64(append(a, amfNumber), math.Float64bits(f))
}

func (a amf) raw(b ...byte) amf { return append(a, b...) }

func (a amf) end() amf { return append(a, 0, 0, amfObjectEnd) }

// kv builds Metadata from alternating names and values.
func kv(pairs ...any) media.Metadata {
	var m media.Metadata
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, media.Property{Name: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

func TestParseMetadata(t *testing.T) {
	head := amf(nil).str("@setDataFrame").str("onMetaData")
	tests := []struct {
		name string
		body amf
		want media.Metadata
		err  string
	}{
		{"setDataFrame object",
			head.raw(amfObject).key("width").num(320).key("stereo").raw(amfBoolean, 1).
				key("encoder").str("Lavf59").key("x").raw(amfNull).key("y").raw(amfUndefined).end(),
			kv("width", 320.0, "stereo", true, "encoder", "Lavf59", "x", nil, "y", nil), ""},
		{"plain ecma array",
			amf(nil).str("onMetaData").raw(amfECMAArray, 0, 0, 0, 1).key("duration").num(0).end(),
			kv("duration", 0.0), ""},
		{"missing end marker",
			amf(nil).str("onMetaData").raw(amfECMAArray, 0, 0, 0, 1).key("fps").num(25),
			kv("fps", 25.0), ""},
		{"long string and xml",
			amf(nil).str("onMetaData").raw(amfObject).key("l").raw(amfLongString, 0, 0, 0, 2, 'h', 'i').
				key("x").raw(amfXMLDocument, 0, 0, 0, 1, '<').end(),
			kv("l", "hi", "x", "<"), ""},
		{"non-scalars skipped, not flattened",
			amf(nil).str("onMetaData").raw(amfObject).key("a").num(1).
				key("trackinfo").raw(amfStrictArray, 0, 0, 0, 2).raw(amfObject).key("language").str("eng").end().num(3).
				key("obj").raw(amfObject).key("inner").num(2).end().
				key("ecma").raw(amfECMAArray, 0, 0, 0, 0).end().
				key("typed").raw(amfTypedObject).key("Cls").key("p").num(1).end().
				key("date").raw(amfDate, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0).
				key("ref").raw(amfReference, 0, 1).
				key("unsupported").raw(amfUnsupported).
				key("b").num(2).end(),
			kv("a", 1.0, "b", 2.0), ""},
		{"not metadata", amf(nil).str("onCuePoint").raw(amfObject).end(), nil, ErrNotMetadata.Error()},
		{"not metadata after setDataFrame", amf(nil).str("@setDataFrame").str("onTextData"), nil, ErrNotMetadata.Error()},
		{"empty", nil, nil, "flv: metadata name: truncated at byte 0"},
		{"name not string", amf(nil).num(1), nil, "flv: metadata name: AMF0 type 0x00 at byte 0 is not a string"},
		{"no value", amf(nil).str("onMetaData"), nil, "flv: onMetaData without value"},
		{"value not object", amf(nil).str("onMetaData").num(1), nil, "flv: onMetaData value: AMF0 type 0x00 is not an object"},
		{"truncated ecma count", amf(nil).str("onMetaData").raw(amfECMAArray, 0), nil, "flv: onMetaData: truncated at byte 13"},
		{"truncated number", amf(nil).str("onMetaData").raw(amfObject).key("w").raw(amfNumber, 1, 2), nil,
			`flv: onMetaData: property "w": truncated at byte 18`},
		{"truncated string", amf(nil).str("onMetaData").raw(amfObject).key("s").raw(amfString, 0, 9, 'a'), nil,
			`flv: onMetaData: property "s": truncated at byte 20`},
		{"amf3", amf(nil).str("onMetaData").raw(amfObject).key("s").raw(0x11, 1), nil,
			`flv: onMetaData: property "s": AMF0 type 0x11 not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata(tt.body)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, m)
		})
	}
}

// TestParseMetadataBounds feeds the nesting attack that kills lal (AMF0
// objects nested millions deep) and a property flood.
func TestParseMetadataBounds(t *testing.T) {
	nest := func(depth int) []byte {
		b := amf(nil).str("onMetaData").raw(amfObject)
		b = append(b, bytes.Repeat([]byte{0, 1, 'a', amfObject}, depth)...)
		return b
	}
	m, err := ParseMetadata(append(nest(MaxMetadataDepth-1), bytes.Repeat([]byte{0, 0, amfObjectEnd}, MaxMetadataDepth)...))
	require.NoError(t, err, "deepest allowed nesting")
	require.Empty(t, m)
	_, err = ParseMetadata(nest(MaxMetadataDepth))
	require.ErrorContains(t, err, "nested deeper than 8")
	_, err = ParseMetadata(nest(2_500_000))
	require.ErrorContains(t, err, "nested deeper than 8")

	arrays := amf(nil).str("onMetaData").raw(amfObject).key("a")
	arrays = append(arrays, bytes.Repeat([]byte{amfStrictArray, 0, 0, 0, 1}, 1_000_000)...)
	_, err = ParseMetadata(arrays)
	require.ErrorContains(t, err, "nested deeper than 8")

	flood := amf(nil).str("onMetaData").raw(amfObject)
	for range MaxMetadataProperties + 1 {
		flood = flood.key("k").raw(amfNull)
	}
	_, err = ParseMetadata(flood)
	require.EqualError(t, err, `flv: onMetaData: more than 1024 properties`)
	_, err = ParseMetadata(flood[:len(flood)-4])
	require.NoError(t, err)

	elems := amf(nil).str("onMetaData").raw(amfObject).key("a").raw(amfStrictArray, 0xFF, 0xFF, 0xFF, 0xFF)
	elems = append(elems, bytes.Repeat([]byte{amfNull}, 2000)...)
	_, err = ParseMetadata(elems)
	require.EqualError(t, err, `flv: onMetaData: property "a": more than 1024 properties`)
}

func TestMetadataBody(t *testing.T) {
	long := strings.Repeat("x", 70000)
	in := kv(
		"width", 1280, "height", int64(720), "framerate", float32(25), "videodatarate", uint32(2500),
		"duration", 0.0, "stereo", true, "hasCuePoints", false, "encoder", "obs",
		"nothing", nil, "long", long, "odd", struct{}{}, strings.Repeat("n", 70000), 1.0)
	want := kv(
		"width", 1280.0, "height", 720.0, "framerate", 25.0, "videodatarate", 2500.0,
		"duration", 0.0, "stereo", true, "hasCuePoints", false, "encoder", "obs",
		"nothing", nil, "long", long, "odd", nil)
	for _, sdf := range []bool{false, true} {
		body := MetadataBody(in, sdf)
		require.Equal(t, sdf, bytes.HasPrefix(body, amf(nil).str("@setDataFrame")))
		m, err := ParseMetadata(body)
		require.NoError(t, err)
		require.Equal(t, want, m)
	}
	body := MetadataBody(nil, false)
	require.Equal(t, []byte(amf(nil).str("onMetaData").raw(amfECMAArray, 0, 0, 0, 0).end()), body)
}
