//go:build vaapi

package av

import (
	"os"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

// TestVAAPIEncode encodes through hwframes on a real render node
// (PODIUM_VAAPI_DEVICE, default /dev/dri/renderD128): go test -tags vaapi.
func TestVAAPIEncode(t *testing.T) {
	dev := os.Getenv("PODIUM_VAAPI_DEVICE")
	if dev == "" {
		dev = "/dev/dri/renderD128"
	}
	const w, h, n = 640, 360, 60
	before := Live()
	e, err := OpenVideoEncoder(VideoEncoderConfig{
		Codec:   "h264_vaapi",
		Options: map[string]string{"profile": "high", "bf": "0", "rc_mode": "CBR", "maxrate": "1000000", "bufsize": "2000000"},
		Width:   w, Height: h,
		PixelFormat: astiav.PixelFormatNv12,
		TimeBase:    astiav.NewRational(1, 1000),
		FrameRate:   astiav.NewRational(30, 1),
		GOP:         30,
		Bitrate:     1_000_000,
		HWDevice:    astiav.HardwareDeviceTypeVAAPI, HWDevicePath: dev,
	})
	require.NoError(t, err)
	defer e.Close()
	sps, _ := parseRecord(t, e.Config())
	var s h264.SPS
	require.NoError(t, s.Unmarshal(sps[0]))
	require.Equal(t, w, s.Width())
	require.Equal(t, h, s.Height())

	f := testFrame(t)
	var pkts []EncodedPacket
	emit := func(p EncodedPacket) error { pkts = append(pkts, p); return nil }
	for i := range n {
		f.Unref()
		f.SetWidth(w)
		f.SetHeight(h)
		f.SetPixelFormat(astiav.PixelFormatNv12)
		require.NoError(t, f.AllocBuffer(0))
		require.NoError(t, f.ImageFillBlack())
		f.SetPts(int64(i) * 33)
		require.NoError(t, e.Encode(f, emit))
	}
	f.Unref()
	require.NoError(t, e.Encode(nil, emit))
	require.Len(t, pkts, n)
	require.True(t, pkts[0].Key)
	for _, p := range pkts {
		var au h264.AVCC
		require.NoError(t, au.Unmarshal(p.Data))
	}
	e.Close()
	require.Equal(t, before+1, Live())
}
