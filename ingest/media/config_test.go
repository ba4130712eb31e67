package media

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVideoConfig(t *testing.T) {
	sps, pps, vps := []byte{0x67, 0x42, 0, 0x1e}, []byte{0x68, 0xce}, []byte{0x40, 0x01}
	avcC := []byte{1, 0x42, 0, 0x1e, 0xfd, 0xe1, 0, 4}
	avcC = append(append(avcC, sps...), 1, 0, 2)
	avcC = append(avcC, pps...)
	c, err := ParseVideoConfig(CodecH264, avcC)
	require.NoError(t, err)
	require.Equal(t, VideoConfig{LengthSize: 2, SPS: sps, PPS: pps}, c)

	hvcC := make([]byte, 22)
	hvcC[0], hvcC[21] = 1, 0x0f
	hvcC = append(hvcC, 3)
	for _, a := range []struct {
		typ byte
		ps  []byte
	}{{32, vps}, {33, sps}, {34, pps}} {
		hvcC = append(append(hvcC, 0x80|a.typ, 0, 1, 0, byte(len(a.ps))), a.ps...)
	}
	c, err = ParseVideoConfig(CodecH265, hvcC)
	require.NoError(t, err)
	require.Equal(t, VideoConfig{LengthSize: 4, VPS: vps, SPS: sps, PPS: pps}, c)

	for name, tc := range map[string]struct {
		codec Codec
		rec   []byte
		err   string
	}{
		"short":         {CodecH264, avcC[:5], "record of 5 bytes: too short"},
		"version":       {CodecH264, append([]byte{2}, avcC[1:]...), "record version 2: not 1"},
		"no sps":        {CodecH264, []byte{1, 0, 0, 0, 0xff, 0xe0, 0}, "record has no SPS"},
		"truncated pps": {CodecH264, avcC[:len(avcC)-1], "pps 0: nal unit of 2 bytes: 1 left in record"},
		"hevc no sps":   {CodecH265, append(make([]byte, 0, 23), append([]byte{1}, make([]byte, 22)...)...), "record has no SPS"},
		"other codec":   {CodecAAC, avcC, "no decoder configuration record for aac"},
	} {
		_, err := ParseVideoConfig(tc.codec, tc.rec)
		require.EqualError(t, err, tc.err, name)
	}
}

func TestVideoSize(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00,
		0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}
	w, h := VideoSize(CodecH264, sps)
	require.Equal(t, [2]int{1920, 1080}, [2]int{w, h})
	for name, tc := range map[string]struct {
		codec Codec
		sps   []byte
	}{
		"truncated": {CodecH264, sps[:6]},
		"empty":     {CodecH265, nil},
		"garbage":   {CodecH265, []byte{0x42, 0x01, 0xff, 0xff, 0xff}},
		"other":     {CodecVP9, sps},
	} {
		w, h := VideoSize(tc.codec, tc.sps)
		require.Zero(t, w, name)
		require.Zero(t, h, name)
	}
}
