package av

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/asticode/go-astiav"
)

// VideoEncoderConfig describes an H.264 encoder: the codec, the backend's
// option map (from hwaccel) and the frames the caller will send.
type VideoEncoderConfig struct {
	Codec         string            // "libx264", "h264_nvenc", "h264_qsv", "h264_vaapi"
	Options       map[string]string // codec options passed to avcodec_open2 (the backend's option map)
	Width, Height int
	PixelFormat   astiav.PixelFormat // the software frames the caller sends
	TimeBase      astiav.Rational    // of frame PTS (the pipeline uses 1/1000)
	FrameRate     astiav.Rational
	GOP           int   // frames between keyframes
	Bitrate       int64 // bit/s
	// HWDevice is 0 for none. With VAAPI the encoder gets a device and a
	// frames pool, and Encode uploads each software frame.
	HWDevice     astiav.HardwareDeviceType
	HWDevicePath string // e.g. /dev/dri/renderD128 ("" = libav's default)
}

// EncodedPacket is one encoded access unit, Go-owned: Data is AVCC
// (4-byte length-prefixed NALUs); PTS and DTS are in the config's TimeBase.
type EncodedPacket struct {
	Data     []byte
	PTS, DTS int64
	Key      bool
}

// VideoEncoder encodes software frames to H.264. One goroutine owns it.
type VideoEncoder struct {
	cfg    VideoEncoderConfig
	cc     *astiav.CodecContext
	pkt    *astiav.Packet
	hw     *hwFrames // nil unless cfg.HWDevice is set
	config []byte    // AVCDecoderConfigurationRecord
}

// OpenVideoEncoder opens cfg.Codec. Its errors name the codec (and the
// device) and say why, for a user to read in `podium hw` or a stream's
// stats.
func OpenVideoEncoder(cfg VideoEncoderConfig) (e *VideoEncoder, err error) {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("open %s: picture size %dx%d is not valid", cfg.Codec, cfg.Width, cfg.Height)
	}
	c := astiav.FindEncoderByName(cfg.Codec)
	if c == nil {
		return nil, fmt.Errorf("open %s: encoder not in this FFmpeg build", cfg.Codec)
	}
	// enc, not e: each `return nil, err` sets e to nil before this runs.
	enc := &VideoEncoder{cfg: cfg}
	e = enc
	defer func() {
		if err != nil {
			enc.Close()
		}
	}()
	if e.cc = allocCodecContext(c); e.cc == nil {
		return nil, fmt.Errorf("open %s: alloc codec context", cfg.Codec)
	}
	e.cc.SetWidth(cfg.Width)
	e.cc.SetHeight(cfg.Height)
	e.cc.SetPixelFormat(cfg.PixelFormat)
	e.cc.SetTimeBase(cfg.TimeBase)
	e.cc.SetFramerate(cfg.FrameRate)
	e.cc.SetGopSize(cfg.GOP)
	e.cc.SetBitRate(cfg.Bitrate)
	e.cc.SetFlags(e.cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if cfg.HWDevice != astiav.HardwareDeviceTypeNone {
		if e.hw, err = openHWFrames(cfg.HWDevice, cfg.HWDevicePath, cfg.PixelFormat, cfg.Width, cfg.Height); err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.Codec, err)
		}
		if err = e.hw.attach(e.cc); err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.Codec, err)
		}
	}
	dict := astiav.NewDictionary()
	defer dict.Free()
	for k, v := range cfg.Options {
		if err = dict.Set(k, v, 0); err != nil {
			return nil, fmt.Errorf("open %s: option %s=%s: %w", cfg.Codec, k, v, err)
		}
	}
	err = e.cc.Open(c, dict)
	// avcodec_open2 leaves the options it did not recognise in dict, even
	// when it fails: a typo in a backend's map must not pass silently.
	unknown := leftover(dict)
	switch {
	case err != nil && unknown != "":
		return nil, fmt.Errorf("open %s: %w (options not recognised: %s)", cfg.Codec, err, unknown)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", cfg.Codec, err)
	case unknown != "":
		return nil, fmt.Errorf("open %s: options not recognised: %s", cfg.Codec, unknown)
	}
	if e.config, err = avcConfig(e.cc.ExtraData()); err != nil {
		return nil, fmt.Errorf("open %s: extradata: %w", cfg.Codec, err)
	}
	e.pkt = allocPacket()
	return e, nil
}

// leftover lists the entries left in d, sorted.
func leftover(d *astiav.Dictionary) string {
	var keys []string
	var prev *astiav.DictionaryEntry
	for {
		prev = d.Get("", prev, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix))
		if prev == nil {
			break
		}
		keys = append(keys, prev.Key())
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// Config is the AVCDecoderConfigurationRecord of the stream (the RTMP AVC
// sequence header).
func (e *VideoEncoder) Config() []byte { return e.config }

// Encode sends f (nil flushes; its PTS in the config's TimeBase) and calls
// emit with each packet the encoder returns. f is not kept.
func (e *VideoEncoder) Encode(f *astiav.Frame, emit func(EncodedPacket) error) error {
	in := f
	if f != nil && e.hw != nil {
		hf, err := e.hw.upload(f)
		if err != nil {
			return fmt.Errorf("%s upload: %w", e.cfg.Codec, err)
		}
		defer hf.Unref()
		in = hf
	}
	if err := e.cc.SendFrame(in); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("%s encode: %w", e.cfg.Codec, err)
	}
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("%s encode: %w", e.cfg.Codec, err)
		}
		p, err := e.packet()
		e.pkt.Unref()
		if err != nil {
			return fmt.Errorf("%s encode: %w", e.cfg.Codec, err)
		}
		if err := emit(p); err != nil {
			return err
		}
	}
}

// packet copies e.pkt into a Go-owned AVCC packet.
func (e *VideoEncoder) packet() (EncodedPacket, error) {
	data, err := toAVCC(e.pkt.Data())
	if err != nil {
		return EncodedPacket{}, err
	}
	return EncodedPacket{
		Data: data,
		PTS:  e.pkt.Pts(),
		DTS:  e.pkt.Dts(),
		Key:  e.pkt.Flags().Has(astiav.PacketFlagKey),
	}, nil
}

// Close frees everything; safe after a failed open, twice, and on nil.
func (e *VideoEncoder) Close() {
	if e == nil {
		return
	}
	freePacket(e.pkt)
	freeCodecContext(e.cc) // unrefs the hw_frames_ctx it holds
	if e.hw != nil {
		e.hw.close()
	}
	e.pkt, e.cc, e.hw = nil, nil, nil
}
