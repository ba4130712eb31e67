package flv

import (
	"bytes"
	"fmt"
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

// Demuxer turns the audio and video message bodies of one publisher into
// packets, and keeps the publisher's current audio and video Track. A new
// Track is made only when the configuration really changes, so consumers
// can compare *Track pointers. The zero value is ready to use; a Demuxer is
// not safe for concurrent use (one publisher, one goroutine).
//
// Every packet owns its Data (the body is copied once); bodies are never
// retained, so the caller may reuse its buffer.
type Demuxer struct {
	audio *media.Track
	video *media.Track
	slab  []byte // see payload
}

// slabSize is what payload allocates at a time: half a second of a
// 1 Mbit/s stream.
const slabSize = 64 << 10

// payload copies b for a packet. Small payloads are cut from a shared
// slab, one allocation per slabSize bytes instead of one per packet (the
// allocations were ≈ 4% of a forward's CPU). Packets are immutable, a
// slab is never reused, and each payload's capacity ends at its length,
// so no payload can reach into another; a slab is freed once its last
// packet is (the GOP cache holds about two seconds of them).
func (d *Demuxer) payload(b []byte) []byte {
	if len(b) > slabSize/4 {
		return bytes.Clone(b)
	}
	if cap(d.slab)-len(d.slab) < len(b) {
		d.slab = make([]byte, 0, slabSize)
	}
	off := len(d.slab)
	d.slab = append(d.slab, b...)
	return d.slab[off:len(d.slab):len(d.slab)]
}

// AudioTrack returns the current audio track, nil before the first audio
// frame (or, for AAC, before the sequence header).
func (d *Demuxer) AudioTrack() *media.Track { return d.audio }

// VideoTrack returns the current video track, nil before the first video
// frame (or, for H.264/H.265/AV1/VP9, before the sequence header).
func (d *Demuxer) VideoTrack() *media.Track { return d.video }

// Audio parses an audio message body (RTMP type 8, FLV tag type 8) received
// at ts milliseconds. An AAC sequence header updates the audio track and
// returns ok=false; so does nothing else.
//
// Track parameters come from the flags byte (5512/11025/22050/44100 Hz,
// 8/16 bits, mono/stereo) with the overrides of FFmpeg's flv demuxer:
// Nellymoser ids 4 and 5 are 16 kHz and 8 kHz mono, MP3 id 14 is 8 kHz,
// Speex is always 16 kHz mono, G.711 is 8 kHz, AAC comes from the
// AudioSpecificConfig. MP3 takes rate and channels from the MPEG audio
// frame header when it has a valid one (the flags cannot say 48 kHz).
// SampleBits is 8 or 16 from the flags for PCM (ids 0 and 3), 16 otherwise.
func (d *Demuxer) Audio(ts uint32, body []byte) (pkt media.Packet, ok bool, err error) {
	if len(body) == 0 {
		return pkt, false, fmt.Errorf("flv: empty audio body")
	}
	flags := body[0]
	format := flags >> 4
	var data []byte
	switch format {
	case soundAAC:
		if len(body) < 2 {
			return pkt, false, fmt.Errorf("flv: audio body of %d bytes: too short for AAC header", len(body))
		}
		switch body[1] {
		case aacSequenceHeader:
			return pkt, false, d.aacConfig(body[2:])
		case aacRaw:
		default:
			return pkt, false, fmt.Errorf("flv: aac packet type %d invalid", body[1])
		}
		if d.audio == nil || d.audio.Codec != media.CodecAAC {
			return pkt, false, fmt.Errorf("flv: aac frame before sequence header")
		}
		data = body[2:]
	case soundDeviceSpec:
		return pkt, false, fmt.Errorf("flv: device-specific sound format 15 not supported")
	default:
		t, err := legacyAudio(flags, body[1:])
		if err != nil {
			return pkt, false, err
		}
		if d.audio == nil || !sameAudio(d.audio, &t) {
			nt := t // only a new track goes to the heap, not every frame's t
			d.audio = &nt
		}
		data = body[1:]
	}
	if len(data) == 0 {
		return pkt, false, fmt.Errorf("flv: %s audio body without payload", d.audio.Codec)
	}
	dts := millis(ts)
	return media.Packet{
		Track: d.audio,
		DTS:   dts,
		PTS:   dts,
		Key:   true,
		Data:  d.payload(data),
	}, true, nil
}

func (d *Demuxer) aacConfig(cfg []byte) error {
	if d.audio != nil && d.audio.Codec == media.CodecAAC && bytes.Equal(d.audio.Config, cfg) {
		return nil
	}
	rate, channels, err := parseAudioSpecificConfig(cfg)
	if err != nil {
		return fmt.Errorf("flv: aac sequence header: %w", err)
	}
	d.audio = &media.Track{
		Kind:       media.KindAudio,
		Codec:      media.CodecAAC,
		Config:     bytes.Clone(cfg),
		SampleRate: rate,
		Channels:   channels,
		SampleBits: 16,
	}
	return nil
}

// legacyAudio derives the track of a non-AAC audio body from its flags byte
// (and, for MP3, from the frame header in payload).
func legacyAudio(flags byte, payload []byte) (media.Track, error) {
	t := media.Track{
		Kind:       media.KindAudio,
		SampleRate: 44100 << ((flags >> 2) & 3) >> 3, // 5512, 11025, 22050, 44100
		Channels:   int(flags&1) + 1,
		SampleBits: 16,
	}
	switch flags >> 4 {
	case soundPCM, soundPCMLE:
		t.Codec = media.CodecPCM
		if flags>>4 == soundPCMLE {
			t.Codec = media.CodecPCMLE
		}
		if flags&2 == 0 {
			t.SampleBits = 8
		}
	case soundADPCM:
		t.Codec = media.CodecADPCM
	case soundMP3, soundMP38k:
		t.Codec = media.CodecMP3
		if flags>>4 == soundMP38k {
			t.SampleRate = 8000
		}
		if rate, channels, ok := mp3Header(payload); ok {
			t.SampleRate, t.Channels = rate, channels
		}
	case soundNelly16k:
		t.Codec, t.SampleRate, t.Channels = media.CodecNellymoser, 16000, 1
	case soundNelly8k:
		t.Codec, t.SampleRate, t.Channels = media.CodecNellymoser, 8000, 1
	case soundNelly:
		t.Codec = media.CodecNellymoser
	case soundG711A:
		t.Codec, t.SampleRate = media.CodecG711A, 8000
	case soundG711U:
		t.Codec, t.SampleRate = media.CodecG711U, 8000
	case soundSpeex:
		t.Codec, t.SampleRate, t.Channels = media.CodecSpeex, 16000, 1
	default:
		return t, fmt.Errorf("flv: sound format %d not supported", flags>>4)
	}
	return t, nil
}

func sameAudio(a, b *media.Track) bool {
	return a.Codec == b.Codec && a.SampleRate == b.SampleRate &&
		a.Channels == b.Channels && a.SampleBits == b.SampleBits
}

// Video parses a video message body (RTMP type 9, FLV tag type 9) received
// at ts milliseconds: legacy FLV (H.263, Screen, VP6, VP6A, Screen2, AVC,
// and codec id 12 for HEVC) and Enhanced RTMP (ExVideoTagHeader with FourCC
// avc1, hvc1, av01, vp09). Sequence headers update the video track and
// return ok=false, as do end-of-sequence markers, Enhanced RTMP metadata and
// command frames.
func (d *Demuxer) Video(ts uint32, body []byte) (pkt media.Packet, ok bool, err error) {
	if len(body) == 0 {
		return pkt, false, fmt.Errorf("flv: empty video body")
	}
	if body[0]&exHeaderBit != 0 {
		return d.exVideo(ts, body)
	}
	frameType := body[0] >> 4
	codecID := body[0] & 0x0F
	if frameType == frameCommand {
		return pkt, false, nil
	}
	if frameType == 0 || frameType > frameCommand {
		return pkt, false, fmt.Errorf("flv: video frame type %d invalid", frameType)
	}
	switch codecID {
	case videoAVC, videoHEVC:
		codec := media.CodecH264
		if codecID == videoHEVC {
			codec = media.CodecH265
		}
		if len(body) < 5 {
			return pkt, false, fmt.Errorf("flv: video body of %d bytes: too short for %s header", len(body), avcName(codec))
		}
		switch body[1] {
		case avcSequenceHeader:
			return pkt, false, d.videoConfig(codec, body[5:])
		case avcNALU:
			return d.videoFrame(codec, ts, int24(body[2:5]), frameType == frameKey, body[5:])
		case avcEndOfSequence:
			return pkt, false, nil
		}
		return pkt, false, fmt.Errorf("flv: %s packet type %d invalid", avcName(codec), body[1])
	case videoH263, videoScreen, videoVP6, videoVP6A, videoScreen2:
		return d.opaqueVideo(ts, codecID, frameType == frameKey, body[1:])
	}
	return pkt, false, fmt.Errorf("flv: video codec id %d not supported", codecID)
}

func avcName(c media.Codec) string {
	if c == media.CodecH265 {
		return "HEVC"
	}
	return "AVC"
}

var fourCCs = [...]struct {
	fourCC string
	codec  media.Codec
}{
	{"avc1", media.CodecH264},
	{"hvc1", media.CodecH265},
	{"av01", media.CodecAV1},
	{"vp09", media.CodecVP9},
}

func (d *Demuxer) exVideo(ts uint32, body []byte) (pkt media.Packet, ok bool, err error) {
	if len(body) < 5 {
		return pkt, false, fmt.Errorf("flv: video body of %d bytes: too short for enhanced RTMP header", len(body))
	}
	frameType := (body[0] >> 4) & 7
	packetType := body[0] & 0x0F
	var codec media.Codec
	for _, f := range fourCCs {
		if string(body[1:5]) == f.fourCC {
			codec = f.codec
		}
	}
	if codec == media.CodecUnknown {
		return pkt, false, fmt.Errorf("flv: enhanced RTMP video fourcc %q not supported", body[1:5])
	}
	if frameType == frameCommand && packetType != exMetadata {
		return pkt, false, nil
	}
	if packetType <= exCodedFramesX && (frameType == 0 || frameType > frameCommand) {
		return pkt, false, fmt.Errorf("flv: video frame type %d invalid", frameType)
	}
	key := frameType == frameKey
	switch packetType {
	case exSequenceStart:
		return pkt, false, d.videoConfig(codec, body[5:])
	case exCodedFrames:
		if codec != media.CodecH264 && codec != media.CodecH265 {
			return d.videoFrame(codec, ts, 0, key, body[5:])
		}
		if len(body) < 8 {
			return pkt, false, fmt.Errorf("flv: video body of %d bytes: too short for %s composition time", len(body), codec)
		}
		return d.videoFrame(codec, ts, int24(body[5:8]), key, body[8:])
	case exCodedFramesX:
		return d.videoFrame(codec, ts, 0, key, body[5:])
	case exSequenceEnd, exMetadata, exMPEG2TSSequenceStart:
		return pkt, false, nil
	}
	return pkt, false, fmt.Errorf("flv: enhanced RTMP video packet type %d not supported", packetType)
}

func (d *Demuxer) videoConfig(codec media.Codec, cfg []byte) error {
	if d.video != nil && d.video.Codec == codec && bytes.Equal(d.video.Config, cfg) {
		return nil
	}
	t := media.Track{Kind: media.KindVideo, Codec: codec, Config: bytes.Clone(cfg)}
	var err error
	switch codec {
	case media.CodecH264, media.CodecH265:
		t.Width, t.Height, err = videoSize(codec, cfg)
	default:
		if len(cfg) == 0 {
			err = fmt.Errorf("empty")
		}
	}
	if err != nil {
		return fmt.Errorf("flv: %s sequence header: %w", codec, err)
	}
	d.video = &t
	return nil
}

func (d *Demuxer) videoFrame(codec media.Codec, ts uint32, cts int32, key bool, data []byte) (media.Packet, bool, error) {
	if d.video == nil || d.video.Codec != codec {
		return media.Packet{}, false, fmt.Errorf("flv: %s frame before sequence header", codec)
	}
	if len(data) == 0 {
		return media.Packet{}, false, fmt.Errorf("flv: empty %s frame", codec)
	}
	dts := millis(ts)
	return media.Packet{
		Track: d.video,
		DTS:   dts,
		PTS:   dts + time.Duration(cts)*time.Millisecond,
		Key:   key,
		Data:  d.payload(data),
	}, true, nil
}

var legacyVideoCodecs = [...]media.Codec{
	videoH263:    media.CodecH263,
	videoScreen:  media.CodecScreen,
	videoVP6:     media.CodecVP6,
	videoVP6A:    media.CodecVP6A,
	videoScreen2: media.CodecScreen2,
}

// opaqueVideo handles the legacy codecs whose frames are carried as they
// are (including VP6's adjustment byte and VP6A's alpha offset). Their track
// is made on the first frame; width and height are read from keyframes of
// H.263 and Screen video, and a change of size makes a new track.
func (d *Demuxer) opaqueVideo(ts uint32, codecID byte, key bool, data []byte) (media.Packet, bool, error) {
	codec := legacyVideoCodecs[codecID]
	if len(data) == 0 {
		return media.Packet{}, false, fmt.Errorf("flv: empty %s frame", codec)
	}
	if d.video == nil || d.video.Codec != codec {
		d.video = &media.Track{Kind: media.KindVideo, Codec: codec}
	}
	if key {
		w, h := legacyVideoSize(codec, data)
		if w != 0 && (w != d.video.Width || h != d.video.Height) {
			d.video = &media.Track{Kind: media.KindVideo, Codec: codec, Width: w, Height: h}
		}
	}
	dts := millis(ts)
	return media.Packet{Track: d.video, DTS: dts, PTS: dts, Key: key, Data: d.payload(data)}, true, nil
}
