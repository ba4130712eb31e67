package media

import (
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/podiumlive/podium/internal/safe"
)

// VideoConfig is what a video Track.Config holds for H.264 and H.265: the
// NAL unit length size of the track's packets and the first parameter set
// of each kind (VPS for H.265 only).
type VideoConfig struct {
	LengthSize    int
	VPS, SPS, PPS []byte // sub-slices of the record
}

// ParseVideoConfig reads an AVCDecoderConfigurationRecord (H.264, ISO
// 14496-15 5.3.3.1) or an HEVCDecoderConfigurationRecord (H.265, 8.3.3.1).
// It requires an SPS; callers that need the other sets check for them.
func ParseVideoConfig(codec Codec, rec []byte) (VideoConfig, error) {
	switch codec {
	case CodecH264:
		return parseAVCC(rec)
	case CodecH265:
		return parseHVCC(rec)
	}
	return VideoConfig{}, fmt.Errorf("no decoder configuration record for %s", codec)
}

// parseAVCC: version, profile, compat, level, 0xfc|lengthSizeMinusOne,
// 0xe0|numSPS, {len16, sps}..., numPPS, {len16, pps}...
func parseAVCC(rec []byte) (VideoConfig, error) {
	var c VideoConfig
	if len(rec) < 7 {
		return c, fmt.Errorf("record of %d bytes: too short", len(rec))
	}
	if rec[0] != 1 {
		return c, fmt.Errorf("record version %d: not 1", rec[0])
	}
	c.LengthSize = int(rec[4]&3) + 1
	nSPS := int(rec[5] & 0x1F)
	if nSPS == 0 {
		return c, fmt.Errorf("record has no SPS")
	}
	var err error
	pos := 6
	if c.SPS, pos, err = firstOfSets(rec, pos, nSPS, "sps"); err != nil {
		return c, err
	}
	if pos >= len(rec) {
		return c, fmt.Errorf("record has no PPS count")
	}
	c.PPS, _, err = firstOfSets(rec, pos+1, int(rec[pos]), "pps")
	return c, err
}

// firstOfSets reads n 16-bit length-prefixed parameter sets at rec[pos:]
// and returns the first (nil when n is 0) and the position after the last.
func firstOfSets(rec []byte, pos, n int, what string) (first []byte, next int, err error) {
	for i := 0; i < n; i++ {
		nalu, after, err := readNALU16(rec, pos)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %d: %w", what, i, err)
		}
		if first == nil {
			first = nalu
		}
		pos = after
	}
	return first, pos, nil
}

// parseHVCC: 22 bytes of header (lengthSizeMinusOne in the low bits of
// byte 21), numOfArrays, then per array: type, count16, {len16, nalu}...
func parseHVCC(rec []byte) (VideoConfig, error) {
	const header = 22
	var c VideoConfig
	if len(rec) < header+1 {
		return c, fmt.Errorf("record of %d bytes: too short", len(rec))
	}
	if rec[0] != 1 {
		return c, fmt.Errorf("record version %d: not 1", rec[0])
	}
	c.LengthSize = int(rec[21]&3) + 1
	nArrays := int(rec[header])
	pos := header + 1
	for i := 0; i < nArrays; i++ {
		if pos+3 > len(rec) {
			return c, fmt.Errorf("nal unit array %d: truncated", i)
		}
		typ := rec[pos] & 0x3F
		n := int(binary.BigEndian.Uint16(rec[pos+1:]))
		pos += 3
		for j := 0; j < n; j++ {
			nalu, next, err := readNALU16(rec, pos)
			if err != nil {
				return c, fmt.Errorf("nal unit array %d, unit %d: %w", i, j, err)
			}
			switch {
			case typ == 32 && c.VPS == nil: // VPS_NUT
				c.VPS = nalu
			case typ == 33 && c.SPS == nil: // SPS_NUT
				c.SPS = nalu
			case typ == 34 && c.PPS == nil: // PPS_NUT
				c.PPS = nalu
			}
			pos = next
		}
	}
	if c.SPS == nil {
		return c, fmt.Errorf("record has no SPS")
	}
	return c, nil
}

// VideoSize reads the picture size from an H.264 or H.265 SPS; 0x0 when
// it does not parse (mediacommon's parser runs under safe.Parse: a
// malformed SPS from a publisher fails, it does not crash the server).
func VideoSize(codec Codec, sps []byte) (width, height int) {
	_ = safe.Parse(func() error {
		switch codec {
		case CodecH264:
			var s h264.SPS
			if err := s.Unmarshal(sps); err != nil {
				return err
			}
			width, height = s.Width(), s.Height()
		case CodecH265:
			var s h265.SPS
			if err := s.Unmarshal(sps); err != nil {
				return err
			}
			width, height = s.Width(), s.Height()
		}
		return nil
	})
	return width, height
}

// AVCConfig builds an AVCDecoderConfigurationRecord (ISO 14496-15
// 5.3.3.1) for 4-byte NAL unit lengths from the SPSs and PPSs, profile
// and level taken from the first SPS.
func AVCConfig(sps, pps [][]byte) ([]byte, error) {
	if len(sps) == 0 || len(pps) == 0 || len(sps[0]) < 4 || len(sps) > 31 || len(pps) > 255 {
		return nil, fmt.Errorf("need 1-31 SPS and 1-255 PPS, got %d and %d", len(sps), len(pps))
	}
	size := 7
	for _, sets := range [][][]byte{sps, pps} {
		for _, n := range sets {
			if len(n) == 0 || len(n) > 0xffff {
				return nil, fmt.Errorf("parameter set of %d bytes", len(n))
			}
			size += 2 + len(n)
		}
	}
	rec := make([]byte, 0, size)
	rec = append(rec,
		1,                   // configurationVersion
		sps[0][1],           // AVCProfileIndication
		sps[0][2],           // profile_compatibility
		sps[0][3],           // AVCLevelIndication
		0xFC|3,              // lengthSizeMinusOne: 4-byte lengths
		0xE0|byte(len(sps))) // numOfSequenceParameterSets
	for _, n := range sps {
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(n)))
		rec = append(rec, n...)
	}
	rec = append(rec, byte(len(pps)))
	for _, n := range pps {
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(n)))
		rec = append(rec, n...)
	}
	return rec, nil
}

// readNALU16 reads a 16-bit length-prefixed NAL unit at rec[pos:].
func readNALU16(rec []byte, pos int) (nalu []byte, next int, err error) {
	if pos+2 > len(rec) {
		return nil, 0, fmt.Errorf("length truncated")
	}
	n := int(binary.BigEndian.Uint16(rec[pos:]))
	pos += 2
	if n == 0 || pos+n > len(rec) {
		return nil, 0, fmt.Errorf("nal unit of %d bytes: %d left in record", n, len(rec)-pos)
	}
	return rec[pos : pos+n], pos + n, nil
}
