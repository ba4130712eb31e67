package hls

import (
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/podiumlive/podium/ingest/media"
)

var errBadConfig = errors.New("bad codec configuration")

// videoConfig is what the muxers need from an avcC/hvcC record.
type videoConfig struct {
	codec         media.Codec
	lengthSize    int // bytes of each NAL unit's length prefix
	vps, sps, pps []byte
}

// parseVideoConfig reads an AVCDecoderConfigurationRecord (H.264) or an
// HEVCDecoderConfigurationRecord (H.265).
func parseVideoConfig(t *media.Track) (videoConfig, error) {
	c := videoConfig{codec: t.Codec}
	rec := t.Config
	switch t.Codec {
	case media.CodecH264:
		// version, profile, compat, level, 0xfc|lengthSizeMinusOne,
		// 0xe0|numSPS, {len16, sps}..., numPPS, {len16, pps}...
		if len(rec) < 7 || rec[0] != 1 {
			return c, fmt.Errorf("avcC: %w", errBadConfig)
		}
		c.lengthSize = int(rec[4]&3) + 1
		pos := 5
		n := int(rec[pos] & 0x1f)
		pos++
		for i := 0; i < n; i++ {
			nalu, next, err := readNALU16(rec, pos)
			if err != nil {
				return c, fmt.Errorf("avcC sps: %w", err)
			}
			if c.sps == nil {
				c.sps = nalu
			}
			pos = next
		}
		if pos >= len(rec) {
			return c, fmt.Errorf("avcC: no pps count: %w", errBadConfig)
		}
		n = int(rec[pos])
		pos++
		for i := 0; i < n; i++ {
			nalu, next, err := readNALU16(rec, pos)
			if err != nil {
				return c, fmt.Errorf("avcC pps: %w", err)
			}
			if c.pps == nil {
				c.pps = nalu
			}
			pos = next
		}
	case media.CodecH265:
		// 22 bytes of header (lengthSizeMinusOne in the low bits of byte
		// 21), numOfArrays, then per array: type, count16, {len16, nalu}...
		if len(rec) < 23 || rec[0] != 1 {
			return c, fmt.Errorf("hvcC: %w", errBadConfig)
		}
		c.lengthSize = int(rec[21]&3) + 1
		arrays := int(rec[22])
		pos := 23
		for range arrays {
			if pos+3 > len(rec) {
				return c, fmt.Errorf("hvcC arrays: %w", errBadConfig)
			}
			typ := rec[pos] & 0x3f
			count := int(rec[pos+1])<<8 | int(rec[pos+2])
			pos += 3
			for range count {
				nalu, next, err := readNALU16(rec, pos)
				if err != nil {
					return c, fmt.Errorf("hvcC nalu: %w", err)
				}
				switch {
				case typ == 32 && c.vps == nil:
					c.vps = nalu
				case typ == 33 && c.sps == nil:
					c.sps = nalu
				case typ == 34 && c.pps == nil:
					c.pps = nalu
				}
				pos = next
			}
		}
		if c.vps == nil {
			return c, fmt.Errorf("hvcC: no vps: %w", errBadConfig)
		}
	default:
		return c, fmt.Errorf("video codec %s: not supported by HLS", t.Codec)
	}
	if c.sps == nil || c.pps == nil {
		return c, fmt.Errorf("%s config without sps or pps: %w", t.Codec, errBadConfig)
	}
	return c, nil
}

func readNALU16(rec []byte, pos int) (nalu []byte, next int, err error) {
	if pos+2 > len(rec) {
		return nil, 0, errBadConfig
	}
	n := int(rec[pos])<<8 | int(rec[pos+1])
	pos += 2
	if n == 0 || pos+n > len(rec) {
		return nil, 0, errBadConfig
	}
	return rec[pos : pos+n], pos + n, nil
}

// splitNALUs splits a length-prefixed access unit into its NAL units
// (sub-slices of data, not copies). dst is reused.
func splitNALUs(dst [][]byte, data []byte, lengthSize int) ([][]byte, error) {
	dst = dst[:0]
	for len(data) > 0 {
		if len(data) < lengthSize {
			return dst, fmt.Errorf("truncated nal unit length: %w", errBadConfig)
		}
		n := 0
		for i := range lengthSize {
			n = n<<8 | int(data[i])
		}
		data = data[lengthSize:]
		if n > len(data) {
			return dst, fmt.Errorf("nal unit of %d bytes in %d: %w", n, len(data), errBadConfig)
		}
		if n > 0 {
			dst = append(dst, data[:n])
		}
		data = data[n:]
	}
	if len(dst) == 0 {
		return dst, fmt.Errorf("empty access unit: %w", errBadConfig)
	}
	return dst, nil
}

// hasParams reports whether an access unit carries its own SPS (so the
// one from the configuration need not be prepended).
func hasParams(codec media.Codec, nalus [][]byte) bool {
	for _, n := range nalus {
		switch codec {
		case media.CodecH264:
			if n[0]&0x1f == 7 {
				return true
			}
		case media.CodecH265:
			if len(n) > 0 && (n[0]>>1)&0x3f == 33 {
				return true
			}
		}
	}
	return false
}

// withParams prepends the configuration's parameter sets to a keyframe
// that lacks them: RTMP carries them out of band, HLS players need them in
// band at every segment start.
func withParams(dst [][]byte, vc *videoConfig, nalus [][]byte) [][]byte {
	dst = dst[:0]
	if vc.vps != nil {
		dst = append(dst, vc.vps)
	}
	dst = append(dst, vc.sps, vc.pps)
	return append(dst, nalus...)
}

// audioConfig is what the muxers need from an audio track.
type audioConfig struct {
	codec    media.Codec
	asc      mpeg4audio.AudioSpecificConfig // AAC
	rate     int
	channels int
	// frameSamples is the samples per frame (1024 for AAC, 1152 for MP3).
	frameSamples int
}

func parseAudioConfig(t *media.Track) (audioConfig, error) {
	a := audioConfig{codec: t.Codec, rate: t.SampleRate, channels: t.Channels}
	switch t.Codec {
	case media.CodecAAC:
		if err := a.asc.Unmarshal(t.Config); err != nil {
			return a, fmt.Errorf("aac config: %w", err)
		}
		a.rate = a.asc.SampleRate
		a.frameSamples = 1024
		if a.asc.FrameLengthFlag {
			a.frameSamples = 960
		}
	case media.CodecMP3:
		a.frameSamples = 1152
	default:
		return a, fmt.Errorf("audio codec %s: not supported by HLS", t.Codec)
	}
	if a.rate <= 0 {
		return a, fmt.Errorf("%s sample rate %d: %w", t.Codec, a.rate, errBadConfig)
	}
	return a, nil
}
