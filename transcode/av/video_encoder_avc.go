package av

import (
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/podiumlive/podium/ingest/media"
)

// isAnnexB reports whether b starts with an Annex B start code.
func isAnnexB(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || (len(b) >= 4 && b[2] == 0 && b[3] == 1))
}

// splitNALUs returns the NALUs of an Annex B or AVCC access unit. They
// alias b.
func splitNALUs(b []byte) ([][]byte, error) {
	if isAnnexB(b) {
		var a h264.AnnexB
		if err := a.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("annex b: %w", err)
		}
		return a, nil
	}
	var a h264.AVCC
	if err := a.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("avcc: %w", err)
	}
	return a, nil
}

// toAVCC converts an encoder's access unit (Annex B from libx264, NVENC,
// QSV and VAAPI) to a Go-owned AVCC one, without access unit delimiters
// and filler data, which RTMP and HLS consumers do not want.
func toAVCC(b []byte) ([]byte, error) {
	nalus, err := splitNALUs(b)
	if err != nil {
		return nil, err
	}
	keep := nalus[:0:0]
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		}
		keep = append(keep, n)
	}
	if len(keep) == 0 {
		return nil, errors.New("access unit has no NALU")
	}
	return h264.AVCC(keep).Marshal() // Marshal allocates: the result owns its bytes
}

// avcConfig builds the AVCDecoderConfigurationRecord (ISO 14496-15
// 5.3.3.1) from an encoder's global-header extradata: Annex B SPS/PPS as
// libx264 and the hardware encoders give it, or a record already.
func avcConfig(extra []byte) ([]byte, error) {
	if len(extra) == 0 {
		return nil, errors.New("encoder gave no SPS/PPS")
	}
	if extra[0] == 1 { // already a record
		return append([]byte(nil), extra...), nil
	}
	nalus, err := splitNALUs(extra)
	if err != nil {
		return nil, err
	}
	var sps, pps [][]byte
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeSPS:
			sps = append(sps, n)
		case h264.NALUTypePPS:
			pps = append(pps, n)
		}
	}
	return media.AVCConfig(sps, pps)
}
