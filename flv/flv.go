// Package flv converts FLV tag bodies — which are also the payloads of RTMP
// audio (type 8), video (type 9) and data (type 18) messages — to and from
// the codec-level media.Track, media.Packet and media.Metadata that flow
// through Podium's hub.
//
// Demuxing (RTMP ingest): a Demuxer per publisher turns message bodies into
// packets and keeps the current audio and video Track. Muxing (RTMP play and
// push): AudioConfig/VideoConfig build sequence headers from a Track, and
// AppendAudio/AppendVideo (or AudioBody/VideoBody) build frame bodies from a
// Packet. Frame payloads round-trip byte for byte.
//
// Errors are per message: a caller may drop the offending message, count
// it, and go on with the next one.
package flv

import (
	"errors"
	"time"
)

// ErrNotMetadata is returned by ParseMetadata for data messages other than
// onMetaData (onCuePoint, onTextData, |RtmpSampleAccess, ...).
var ErrNotMetadata = errors.New("flv: data message is not onMetaData")

// FLV audio SoundFormat values (upper nibble of the first audio byte).
const (
	soundPCM          = 0
	soundADPCM        = 1
	soundMP3          = 2
	soundPCMLE        = 3
	soundNelly16k     = 4
	soundNelly8k      = 5
	soundNelly        = 6
	soundG711A        = 7
	soundG711U        = 8
	soundAAC          = 10
	soundSpeex        = 11
	soundMP38k        = 14
	soundDeviceSpec   = 15
	aacSequenceHeader = 0
	aacRaw            = 1
)

// FLV video CodecID values (lower nibble of the first video byte).
const (
	videoH263    = 2
	videoScreen  = 3
	videoVP6     = 4
	videoVP6A    = 5
	videoScreen2 = 6
	videoAVC     = 7
	videoHEVC    = 12 // not in Adobe's spec: SRS, lal and Chinese CDNs use it

	frameKey     = 1
	frameInter   = 2
	frameCommand = 5 // video info/command frame: not a picture

	avcSequenceHeader = 0
	avcNALU           = 1
	avcEndOfSequence  = 2
)

// Enhanced RTMP (veovera enhanced-rtmp v1/v2) video PacketType values.
const (
	exHeaderBit            = 0x80
	exSequenceStart        = 0
	exCodedFrames          = 1
	exSequenceEnd          = 2
	exCodedFramesX         = 3
	exMetadata             = 4
	exMPEG2TSSequenceStart = 5
)

// Timestamp converts a media timestamp to the RTMP message timestamp
// (milliseconds, modulo 2^32). Use it for the message that carries a body
// built by AppendVideo: the composition time in the body is computed the
// same way, so the receiver's PTS is Timestamp(p.PTS).
func Timestamp(d time.Duration) uint32 {
	return uint32(d.Milliseconds())
}

func millis(ts uint32) time.Duration {
	return time.Duration(ts) * time.Millisecond
}

// int24 reads a big-endian signed 24-bit integer from b[0:3].
func int24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	if v&0x800000 != 0 {
		v -= 1 << 24
	}
	return v
}

func appendInt24(dst []byte, v int64) []byte {
	if v > 1<<23-1 {
		v = 1<<23 - 1
	} else if v < -(1 << 23) {
		v = -(1 << 23)
	}
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}
