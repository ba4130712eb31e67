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
