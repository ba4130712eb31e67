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
// HEVCDecoderConfigurationRecord (H.265): the muxers need every parameter
// set the codec has.
func parseVideoConfig(t *media.Track) (videoConfig, error) {
	if t.Codec != media.CodecH264 && t.Codec != media.CodecH265 {
		return videoConfig{}, fmt.Errorf("video codec %s: not supported by HLS", t.Codec)
	}
	vc, err := media.ParseVideoConfig(t.Codec, t.Config)
	if err != nil {
		return videoConfig{}, fmt.Errorf("%s config: %v: %w", t.Codec, err, errBadConfig)
	}
	c := videoConfig{codec: t.Codec, lengthSize: vc.LengthSize, vps: vc.VPS, sps: vc.SPS, pps: vc.PPS}
	if c.pps == nil || (c.codec == media.CodecH265 && c.vps == nil) {
		return c, fmt.Errorf("%s config without vps or pps: %w", t.Codec, errBadConfig)
	}
	return c, nil
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
