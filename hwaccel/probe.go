package hwaccel

import (
	"context"
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/transcode/av"
)

// probeFrames is how many frames a probe encodes before flushing: enough
// for an encoder with a little delay to return its first packet.
const probeFrames = 5

// probeSettings is what a probe encodes: a small live stream.
func probeSettings() Settings {
	return Settings{Width: 256, Height: 144, FPS: 30, GOP: 30, Bitrate: 300_000}
}

// probeEncode opens b's encoder on device and encodes black frames, as
// the pipeline would. The encode runs on its own goroutine (which owns the
// encoder and frees it) so that a hung driver cannot hang the caller past
// ctx.
func probeEncode(ctx context.Context, b Backend, device string) error {
	cfg := b.EncoderConfig(probeSettings(), device)
	done := make(chan error, 1)
	go func() { done <- encodeBlack(cfg, probeFrames) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s probe did not finish: %w", cfg.Codec, ctx.Err())
	}
}

// encodeBlack encodes n black frames and a flush, and checks that packets
// came out, the first a keyframe, with an SPS/PPS configuration.
func encodeBlack(cfg av.VideoEncoderConfig, n int) error {
	enc, err := av.OpenVideoEncoder(cfg)
	if err != nil {
		return err
	}
	defer enc.Close()
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(cfg.Width)
	f.SetHeight(cfg.Height)
	f.SetPixelFormat(cfg.PixelFormat)
	if err := f.AllocBuffer(0); err != nil {
		return fmt.Errorf("probe frame: %w", err)
	}
	if err := f.ImageFillBlack(); err != nil {
		return fmt.Errorf("probe frame: %w", err)
	}
	var packets int
	var firstKey bool
	emit := func(p av.EncodedPacket) error {
		if packets == 0 {
			firstKey = p.Key
		}
		packets++
		return nil
	}
	step := int64(1)
	if fr := cfg.FrameRate; fr.Num() > 0 && fr.Den() > 0 {
		step = max(1, int64(cfg.TimeBase.Den())*int64(fr.Den())/(int64(cfg.TimeBase.Num())*int64(fr.Num())))
	}
	for i := range n {
		f.SetPts(int64(i) * step)
		if err := enc.Encode(f, emit); err != nil {
			return err
		}
	}
	if err := enc.Encode(nil, emit); err != nil {
		return err
	}
	switch {
	case packets == 0:
		return fmt.Errorf("%s returned no packet for %d frames", cfg.Codec, n)
	case !firstKey:
		return fmt.Errorf("%s: first packet is not a keyframe", cfg.Codec)
	case len(enc.Config()) == 0:
		return errors.New(cfg.Codec + " gave no SPS/PPS")
	}
	return nil
}

// notInBuild is the reason when this FFmpeg lacks encoder.
func notInBuild(encoder string) string {
	return encoder + " is not in this FFmpeg build: install an FFmpeg built with it (Debian 12's libavcodec59 has it)"
}

// hasEncoder reports whether this FFmpeg has encoder.
func hasEncoder(encoder string) bool {
	return astiav.FindEncoderByName(encoder) != nil
}
