package av

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// AACEncoder encodes planar float frames of exactly FrameSize samples to
// AAC-LC.
type AACEncoder struct {
	cc  *astiav.CodecContext
	pkt *astiav.Packet
}

// OpenAACEncoder opens FFmpeg's native AAC encoder with a global header,
// so Config is the AudioSpecificConfig of the RTMP sequence header.
func OpenAACEncoder(rate, channels int, bitrate int64) (e *AACEncoder, err error) {
	c := astiav.FindEncoder(astiav.CodecIDAac)
	if c == nil {
		return nil, errors.New("no aac encoder in this FFmpeg build")
	}
	x := &AACEncoder{}
	defer func() {
		if err != nil {
			x.Close() // the results were set to nil by the return
		}
	}()
	e = x
	if e.cc = allocCodecContext(c); e.cc == nil {
		return nil, errors.New("alloc aac encoder")
	}
	e.cc.SetSampleRate(rate)
	e.cc.SetChannelLayout(layout(channels))
	e.cc.SetSampleFormat(astiav.SampleFormatFltp)
	e.cc.SetBitRate(bitrate)
	e.cc.SetTimeBase(astiav.NewRational(1, rate))
	e.cc.SetFlags(e.cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	e.cc.SetThreadCount(1)
	if err = e.cc.Open(c, nil); err != nil {
		return nil, fmt.Errorf("open aac encoder (%d Hz, %d ch, %d bit/s): %w", rate, channels, bitrate, err)
	}
	e.pkt = allocPacket()
	return e, nil
}

// FrameSize is the number of samples per frame the encoder takes (1024).
func (e *AACEncoder) FrameSize() int { return e.cc.FrameSize() }

// Config is the AudioSpecificConfig.
func (e *AACEncoder) Config() []byte { return e.cc.ExtraData() }

// Encode encodes f (nil flushes) and calls emit with each packet's bytes,
// which are only valid during the call.
func (e *AACEncoder) Encode(f *astiav.Frame, emit func(data []byte) error) error {
	if err := e.cc.SendFrame(f); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("aac encode: %w", err)
	}
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("aac encode: %w", err)
		}
		err := emit(e.pkt.Data())
		e.pkt.Unref()
		if err != nil {
			return err
		}
	}
}

// Close frees everything; safe on a partly opened encoder.
func (e *AACEncoder) Close() {
	freePacket(e.pkt)
	freeCodecContext(e.cc)
	e.pkt, e.cc = nil, nil
}
