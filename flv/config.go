package flv

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/internal/safe"
)

// videoSize checks an AVC or HEVC decoder configuration record and
// returns the picture size from its first SPS. The size is 0x0 when the
// SPS does not parse: the record is still usable by a decoder.
func videoSize(codec media.Codec, rec []byte) (width, height int, err error) {
	vc, err := media.ParseVideoConfig(codec, rec)
	if err != nil {
		return 0, 0, err
	}
	width, height = media.VideoSize(codec, vc.SPS)
	return width, height, nil
}

var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseAudioSpecificConfig returns the output sample rate and channel count
// of an AudioSpecificConfig (ISO 14496-3 1.6.2.1). Object types that
// mediacommon does not parse (AAC Main, SSR, LTP, ER ...) fall back to the
// common prefix: audioObjectType, samplingFrequencyIndex,
// channelConfiguration.
func parseAudioSpecificConfig(cfg []byte) (rate, channels int, err error) {
	var c mpeg4audio.AudioSpecificConfig
	if safe.Parse(func() error { return c.Unmarshal(cfg) }) == nil {
		rate, channels = c.SampleRate, c.ChannelCount
		if c.ExtensionSampleRate != 0 {
			rate = c.ExtensionSampleRate
		}
		return rate, channels, nil
	}
	r := bitReader{buf: cfg}
	if r.read(5) == 31 {
		r.read(6)
	}
	if idx := r.read(4); idx == 15 {
		rate = int(r.read(24))
	} else if int(idx) < len(aacRates) {
		rate = aacRates[idx]
	}
	channels = int(r.read(4))
	switch {
	case r.overrun:
		return 0, 0, fmt.Errorf("config of %d bytes: too short", len(cfg))
	case rate == 0:
		return 0, 0, fmt.Errorf("invalid sampling frequency")
	case channels == 7:
		channels = 8
	case channels > 7:
		return 0, 0, fmt.Errorf("channel configuration %d not supported", channels)
	}
	return rate, channels, nil
}

type bitReader struct {
	buf     []byte
	pos     int // in bits
	overrun bool
}

func (r *bitReader) read(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos>>3 >= len(r.buf) {
			r.overrun = true
			return 0
		}
		v = v<<1 | uint32(r.buf[r.pos>>3]>>(7-r.pos&7))&1
		r.pos++
	}
	return v
}

var mp3Rates = [4][3]int{
	{11025, 12000, 8000},  // MPEG 2.5
	{},                    // reserved
	{22050, 24000, 16000}, // MPEG 2
	{44100, 48000, 32000}, // MPEG 1
}

// mp3Header returns the sample rate and channel count of the MPEG audio
// frame header at the start of payload; ok is false when there is none.
func mp3Header(p []byte) (rate, channels int, ok bool) {
	if len(p) < 4 || p[0] != 0xFF || p[1]&0xE0 != 0xE0 {
		return 0, 0, false
	}
	version, layer, rateIdx := (p[1]>>3)&3, (p[1]>>1)&3, (p[2]>>2)&3
	if version == 1 || layer == 0 || rateIdx == 3 || p[2]>>4 == 15 {
		return 0, 0, false
	}
	channels = 2
	if p[3]>>6 == 3 {
		channels = 1
	}
	return mp3Rates[version][rateIdx], channels, true
}

var h263Sizes = [...][2]int{2: {352, 288}, 3: {176, 144}, 4: {128, 96}, 5: {320, 240}, 6: {160, 120}}

// legacyVideoSize reads the picture size from a keyframe of Sorenson H.263
// (its picture header) or Screen video v1/v2 (its 4-byte header); 0x0 for
// other codecs or when the header is not valid.
func legacyVideoSize(codec media.Codec, p []byte) (width, height int) {
	switch codec {
	case media.CodecScreen, media.CodecScreen2:
		if len(p) < 4 {
			return 0, 0
		}
		return int(p[0]&0x0F)<<8 | int(p[1]), int(p[2]&0x0F)<<8 | int(p[3])
	case media.CodecH263:
		r := bitReader{buf: p}
		if r.read(17) != 1 || r.read(5) > 1 {
			return 0, 0
		}
		r.read(8) // temporal reference
		switch format := r.read(3); format {
		case 0:
			width, height = int(r.read(8)), int(r.read(8))
		case 1:
			width, height = int(r.read(16)), int(r.read(16))
		default:
			if int(format) < len(h263Sizes) {
				width, height = h263Sizes[format][0], h263Sizes[format][1]
			}
		}
		if r.overrun || width == 0 || height == 0 {
			return 0, 0
		}
	}
	return width, height
}
