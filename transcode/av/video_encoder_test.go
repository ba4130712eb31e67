package av

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"unsafe"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

func x264Config(w, h int) VideoEncoderConfig {
	return VideoEncoderConfig{
		Codec: "libx264",
		Options: map[string]string{"preset": "veryfast", "tune": "zerolatency", "profile": "high",
			"bf": "0", "sc_threshold": "0", "forced-idr": "1", "threads": "2",
			"maxrate": "500000", "bufsize": "1000000"},
		Width: w, Height: h,
		PixelFormat: astiav.PixelFormatYuv420P,
		TimeBase:    astiav.NewRational(1, 1000),
		FrameRate:   astiav.NewRational(25, 1),
		GOP:         25,
		Bitrate:     500_000,
	}
}

// testFrame allocates a frame for encodeFrames.
func testFrame(t *testing.T) *astiav.Frame {
	t.Helper()
	f := allocFrame()
	t.Cleanup(func() { freeFrame(f) })
	return f
}

// avFrameHead mirrors the first fields of FFmpeg's AVFrame (data and
// linesize), which go-astiav v0.16.0 does not let us write through.
type avFrameHead struct {
	data     [8]unsafe.Pointer
	linesize [8]int32
}

// paint gives f a new w x h yuv420p buffer: black with a bright vertical
// bar at column 8*i, so that P-frames carry motion.
func paint(t *testing.T, f *astiav.Frame, w, h, i int) {
	t.Helper()
	f.Unref()
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	require.NoError(t, f.AllocBuffer(0))
	require.NoError(t, f.ImageFillBlack())
	head := (*avFrameHead)(f.UnsafePointer())
	stride := int(head.linesize[0])
	luma := unsafe.Slice((*byte)(head.data[0]), stride*h)
	x := (8 * i) % (w - 8)
	for y := range h {
		for dx := range 8 {
			luma[y*stride+x+dx] = 235
		}
	}
}

// encodeFrames encodes n frames, 40 ms apart, and a flush.
func encodeFrames(t *testing.T, e *VideoEncoder, f *astiav.Frame, w, h, n int) []EncodedPacket {
	t.Helper()
	var out []EncodedPacket
	emit := func(p EncodedPacket) error { out = append(out, p); return nil }
	for i := range n {
		paint(t, f, w, h, i)
		f.SetPts(int64(i) * 40)
		require.NoError(t, e.Encode(f, emit))
	}
	f.Unref()
	require.NoError(t, e.Encode(nil, emit))
	return out
}

// parseRecord parses an AVCDecoderConfigurationRecord into its SPS and PPS.
func parseRecord(t *testing.T, rec []byte) (sps, pps [][]byte) {
	t.Helper()
	require.GreaterOrEqual(t, len(rec), 7)
	require.Equal(t, byte(1), rec[0], "configurationVersion")
	require.Equal(t, byte(3), rec[4]&3, "4-byte NALU lengths")
	pos := 6
	read := func() []byte {
		require.GreaterOrEqual(t, len(rec), pos+2)
		n := int(binary.BigEndian.Uint16(rec[pos:]))
		pos += 2
		require.GreaterOrEqual(t, len(rec), pos+n)
		nalu := rec[pos : pos+n]
		pos += n
		return nalu
	}
	for range int(rec[5] & 0x1F) {
		sps = append(sps, read())
	}
	require.Greater(t, len(rec), pos)
	nPPS := int(rec[pos])
	pos++
	for range nPPS {
		pps = append(pps, read())
	}
	require.Equal(t, rec[1:4], sps[0][1:4], "profile/compat/level from the SPS")
	return sps, pps
}

func TestVideoEncoderX264(t *testing.T) {
	const w, h, n = 320, 240, 50
	before := Live()
	e, err := OpenVideoEncoder(x264Config(w, h))
	require.NoError(t, err)
	defer e.Close()

	sps, pps := parseRecord(t, e.Config())
	require.Len(t, sps, 1)
	require.Len(t, pps, 1)
	var s h264.SPS
	require.NoError(t, s.Unmarshal(sps[0]))
	require.Equal(t, w, s.Width())
	require.Equal(t, h, s.Height())

	pkts := encodeFrames(t, e, testFrame(t), w, h, n)
	require.Len(t, pkts, n, "zerolatency, no B-frames: one packet per frame")
	require.True(t, pkts[0].Key, "first packet is a keyframe")
	keys := 0
	annexB := []byte{}
	for _, nalu := range append(sps, pps...) {
		annexB = append(annexB, 0, 0, 0, 1)
		annexB = append(annexB, nalu...)
	}
	for i, p := range pkts {
		require.Equal(t, int64(i)*40, p.PTS)
		require.Equal(t, p.PTS, p.DTS, "no B-frames")
		var au h264.AVCC
		require.NoError(t, au.Unmarshal(p.Data), "packet %d is AVCC", i)
		for _, nalu := range au {
			typ := h264.NALUType(nalu[0] & 0x1F)
			require.NotEqual(t, h264.NALUTypeAccessUnitDelimiter, typ)
			if typ == h264.NALUTypeIDR {
				require.True(t, p.Key, "packet %d has an IDR slice but no key flag", i)
			}
		}
		if p.Key {
			keys++
		}
		b, err := h264.AnnexB(au).Marshal()
		require.NoError(t, err)
		annexB = append(annexB, b...)
	}
	require.Equal(t, 2, keys, "a keyframe every 25 frames")

	// ffprobe decodes the stream rebuilt from Config and the packets.
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	file := filepath.Join(t.TempDir(), "out.h264")
	require.NoError(t, os.WriteFile(file, annexB, 0o600))
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", file).Output()
	require.NoError(t, err)
	var probe struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &probe))
	require.Len(t, probe.Streams, 1)
	require.Equal(t, "h264", probe.Streams[0].CodecName)
	require.Equal(t, w, probe.Streams[0].Width)
	require.Equal(t, h, probe.Streams[0].Height)
	require.Equal(t, strconv.Itoa(n), probe.Streams[0].NbReadFrames)

	e.Close()
	require.Equal(t, before+1, Live(), "only the test frame is left")
}

func TestVideoEncoderOpenErrors(t *testing.T) {
	before := Live()
	for _, tc := range []struct {
		name string
		edit func(c *VideoEncoderConfig)
		want string
	}{
		{"unknown codec", func(c *VideoEncoderConfig) { c.Codec = "h264_nosuch" }, "open h264_nosuch: encoder not in this FFmpeg build"},
		{"no size", func(c *VideoEncoderConfig) { c.Width = 0 }, "open libx264: picture size 0x240 is not valid"},
		{"unknown option", func(c *VideoEncoderConfig) { c.Options["nosuch"] = "1"; c.Options["alsonot"] = "2" },
			"open libx264: options not recognised: alsonot, nosuch"},
		{"bad preset", func(c *VideoEncoderConfig) { c.Options["preset"] = "p4" }, "open libx264: Invalid argument"},
		{"vaapi render node missing", func(c *VideoEncoderConfig) {
			c.Codec, c.PixelFormat = "h264_vaapi", astiav.PixelFormatNv12
			c.HWDevice, c.HWDevicePath = astiav.HardwareDeviceTypeVAAPI, "/nonexistent/renderD128"
		}, "open h264_vaapi: vaapi device /nonexistent/renderD128: no such file or directory"},
		{"vaapi device not a GPU", func(c *VideoEncoderConfig) {
			c.Codec, c.PixelFormat = "h264_vaapi", astiav.PixelFormatNv12
			c.HWDevice, c.HWDevicePath = astiav.HardwareDeviceTypeVAAPI, "/dev/null"
		}, "open h264_vaapi: create vaapi device /dev/null: Generic error in an external library"},
		{"unsupported hw frames", func(c *VideoEncoderConfig) { c.HWDevice = astiav.HardwareDeviceTypeQSV },
			"open libx264: hardware frames on qsv devices are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := x264Config(320, 240)
			tc.edit(&c)
			e, err := OpenVideoEncoder(c)
			require.Nil(t, e)
			require.EqualError(t, err, tc.want)
			require.Equal(t, before, Live(), "a failed open frees what it allocated")
		})
	}
}

func TestVideoEncoderCloseTwice(t *testing.T) {
	before := Live()
	e, err := OpenVideoEncoder(x264Config(64, 64))
	require.NoError(t, err)
	e.Close()
	e.Close()
	var none *VideoEncoder
	none.Close()
	require.Equal(t, before, Live())
}

func TestVideoEncoderCycles(t *testing.T) {
	before := Live()
	f := testFrame(t)
	for i := range 30 {
		e, err := OpenVideoEncoder(x264Config(128, 96))
		require.NoError(t, err, "cycle %d", i)
		require.NotEmpty(t, encodeFrames(t, e, f, 128, 96, 3))
		e.Close()
	}
	require.Equal(t, before+1, Live())
}

func TestCodecContextPointer(t *testing.T) {
	cc := allocCodecContext(astiav.FindEncoderByName("libx264"))
	defer freeCodecContext(cc)
	p, err := codecContextPointer(cc)
	require.NoError(t, err)
	// The class's String ends with "@ 0x..." of the same AVCodecContext.
	m := regexp.MustCompile(`@ (0x[0-9a-f]+)$`).FindStringSubmatch(cc.Class().String())
	require.Len(t, m, 2)
	require.Equal(t, m[1], fmt.Sprintf("%p", p))
	_, err = codecContextPointer(nil)
	require.Error(t, err)
}

func TestToAVCC(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x1F, 0xAC}
	pps := []byte{0x68, 0xEE, 0x3C, 0x80}
	aud := []byte{0x09, 0xF0}
	filler := []byte{0x0C, 0xFF, 0xFF}
	idr := []byte{0x65, 0x88, 0x84}
	annexB := []byte{0, 0, 0, 1}
	for i, n := range [][]byte{aud, sps, pps, idr, filler} {
		if i == 2 {
			annexB = append(annexB, 0, 0, 1) // 3-byte start codes too
		} else if i > 0 {
			annexB = append(annexB, 0, 0, 0, 1)
		}
		annexB = append(annexB, n...)
	}
	got, err := toAVCC(annexB)
	require.NoError(t, err)
	want, err := h264.AVCC{sps, pps, idr}.Marshal()
	require.NoError(t, err)
	require.Equal(t, want, got, "AUD and filler dropped, the rest in order")
	got[4] = 0 // Go-owned: changing it leaves the input alone
	require.Equal(t, byte(0x67), annexB[4+len(aud)+4])

	again, err := toAVCC(want)
	require.NoError(t, err)
	require.Equal(t, want, again, "AVCC input is kept")

	_, err = toAVCC([]byte{0, 0, 0, 1, 0x09, 0xF0})
	require.EqualError(t, err, "access unit has no NALU")
	_, err = toAVCC([]byte{0, 0, 0, 9, 1})
	require.Error(t, err)
}

func TestAVCConfig(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x1F, 0xAC}
	pps := []byte{0x68, 0xEE, 0x3C, 0x80}
	extra := append(append([]byte{0, 0, 0, 1}, sps...), append([]byte{0, 0, 1}, pps...)...)
	rec, err := avcConfig(extra)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0, 5, 0x67, 0x64, 0x00, 0x1F, 0xAC, 1, 0, 4, 0x68, 0xEE, 0x3C, 0x80}, rec)
	gotSPS, gotPPS := parseRecord(t, rec)
	require.Equal(t, [][]byte{sps}, gotSPS)
	require.Equal(t, [][]byte{pps}, gotPPS)

	same, err := avcConfig(rec)
	require.NoError(t, err)
	require.Equal(t, rec, same, "a record is kept")

	_, err = avcConfig(nil)
	require.EqualError(t, err, "encoder gave no SPS/PPS")
	_, err = avcConfig(append([]byte{0, 0, 0, 1}, sps...))
	require.EqualError(t, err, "need 1-31 SPS and 1-255 PPS, got 1 and 0")
}
