//go:build nvidia || vaapi || qsv

package hwaccel

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/transcode/av"
)

// requireHardwareEncode probes b on device, then encodes two seconds of
// 1280x720 frames through av.OpenVideoEncoder with b's config, as a stream
// would, and checks the AVCC packets and the configuration record.
func requireHardwareEncode(t *testing.T, b Backend, device string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := b.Probe(ctx, device)
	require.True(t, st.Usable, "%s: %s", b.Name(), st.Reason)

	s := Settings{Width: 1280, Height: 720, FPS: 30, GOP: 30, Bitrate: 2_000_000}
	cfg := b.EncoderConfig(s, device)
	before := av.Live()
	enc, err := av.OpenVideoEncoder(cfg)
	require.NoError(t, err)
	defer enc.Close()

	rec := enc.Config()
	require.Greater(t, len(rec), 8)
	require.Equal(t, byte(1), rec[0])
	spsLen := int(rec[6])<<8 | int(rec[7])
	var sps h264.SPS
	require.NoError(t, sps.Unmarshal(rec[8:8+spsLen]))
	require.Equal(t, 1280, sps.Width())
	require.Equal(t, 720, sps.Height())

	f := astiav.AllocFrame()
	defer f.Free()
	var pkts []av.EncodedPacket
	emit := func(p av.EncodedPacket) error { pkts = append(pkts, p); return nil }
	const n = 60
	for i := range n {
		f.Unref()
		f.SetWidth(s.Width)
		f.SetHeight(s.Height)
		f.SetPixelFormat(cfg.PixelFormat)
		require.NoError(t, f.AllocBuffer(0))
		require.NoError(t, f.ImageFillBlack())
		f.SetPts(int64(i) * 1000 / 30)
		require.NoError(t, enc.Encode(f, emit))
	}
	f.Unref()
	require.NoError(t, enc.Encode(nil, emit))
	require.Len(t, pkts, n)
	require.True(t, pkts[0].Key)
	keys := 0
	for _, p := range pkts {
		var au h264.AVCC
		require.NoError(t, au.Unmarshal(p.Data))
		require.Equal(t, p.PTS, p.DTS, "no B-frames")
		if p.Key {
			keys++
		}
	}
	require.Equal(t, 2, keys, "a keyframe every GOP")
	enc.Close()
	require.Equal(t, before, av.Live())
}

// testDevice is PODIUM_HW_DEVICE, or "" for each backend's default.
func testDevice() string { return os.Getenv("PODIUM_HW_DEVICE") }
