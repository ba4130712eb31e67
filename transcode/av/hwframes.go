package av

// go-astiav v0.16.0 cannot build a hardware frames context (FFmpeg 5.1's
// h264_vaapi needs one): these few lines of cgo create the device and the
// frames pool, attach the pool to an encoder and upload software frames.

//#cgo pkg-config: libavutil libavcodec
//#include <libavcodec/avcodec.h>
//#include <libavutil/hwcontext.h>
//#include <libavutil/frame.h>
//#include <libavutil/error.h>
//#include <stdlib.h>
//
//static int podium_hwframes_init(AVBufferRef *device, AVBufferRef **out,
//		enum AVPixelFormat hw, enum AVPixelFormat sw, int w, int h, int pool) {
//	AVBufferRef *ref = av_hwframe_ctx_alloc(device);
//	if (!ref) return AVERROR(ENOMEM);
//	AVHWFramesContext *fc = (AVHWFramesContext *)ref->data;
//	fc->format = hw;
//	fc->sw_format = sw;
//	fc->width = w;
//	fc->height = h;
//	fc->initial_pool_size = pool;
//	int ret = av_hwframe_ctx_init(ref);
//	if (ret < 0) {
//		av_buffer_unref(&ref);
//		return ret;
//	}
//	*out = ref;
//	return 0;
//}
//
//static int podium_is_codec_context(void *p) {
//	return p != NULL && *(const AVClass **)p == avcodec_get_class();
//}
//
//static int podium_attach_hwframes(AVCodecContext *cc, AVBufferRef *frames, enum AVPixelFormat hw) {
//	av_buffer_unref(&cc->hw_frames_ctx);
//	cc->hw_frames_ctx = av_buffer_ref(frames);
//	if (!cc->hw_frames_ctx) return AVERROR(ENOMEM);
//	cc->pix_fmt = hw;
//	return 0;
//}
//
//static int podium_upload(AVBufferRef *frames, AVFrame *dst, const AVFrame *src) {
//	int ret = av_hwframe_get_buffer(frames, dst, 0);
//	if (ret < 0) return ret;
//	ret = av_hwframe_transfer_data(dst, src, 0);
//	if (ret < 0) goto fail;
//	ret = av_frame_copy_props(dst, src);
//	if (ret < 0) goto fail;
//	return 0;
//fail:
//	av_frame_unref(dst);
//	return ret;
//}
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// hwPoolSize is the frames pool's initial size: the encoder's reference
// and lookahead surfaces plus the one being uploaded.
const hwPoolSize = 20

// hwFrames is a hardware device and a pool of its frames, with one
// reusable frame to upload into. It belongs to one encoder.
type hwFrames struct {
	kind   astiav.HardwareDeviceType
	path   string
	hwFmt  astiav.PixelFormat
	device *C.AVBufferRef
	frames *C.AVBufferRef
	frame  *astiav.Frame
}

// hwPixelFormat is the pixel format of frames living on a device.
func hwPixelFormat(t astiav.HardwareDeviceType) (astiav.PixelFormat, error) {
	switch t {
	case astiav.HardwareDeviceTypeVAAPI:
		return astiav.PixelFormatVaapi, nil
	case astiav.HardwareDeviceTypeCUDA:
		return astiav.PixelFormatCuda, nil
	}
	return astiav.PixelFormatNone, fmt.Errorf("hardware frames on %s devices are not supported", t)
}

// openHWFrames opens the device (path "" lets libav choose) and a pool of
// w x h frames holding sw pixels.
func openHWFrames(t astiav.HardwareDeviceType, path string, sw astiav.PixelFormat, w, h int) (hf *hwFrames, err error) {
	hwFmt, err := hwPixelFormat(t)
	if err != nil {
		return nil, err
	}
	// hw, not hf: each `return nil, err` sets hf to nil before this runs.
	hw := &hwFrames{kind: t, path: path, hwFmt: hwFmt}
	hf = hw
	defer func() {
		if err != nil {
			hw.close()
		}
	}()
	if path != "" {
		if _, serr := os.Stat(path); serr != nil {
			var pe *fs.PathError
			if errors.As(serr, &pe) {
				serr = pe.Err // "no such file or directory", still errors.Is fs.ErrNotExist
			}
			return nil, fmt.Errorf("%s device %s: %w", t, path, serr)
		}
	}
	var cpath *C.char
	if path != "" {
		cpath = C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
	}
	if ret := C.av_hwdevice_ctx_create(&hf.device, C.enum_AVHWDeviceType(t), cpath, nil, 0); ret < 0 {
		hf.device = nil
		return nil, fmt.Errorf("create %s device %s: %w", t, hf.deviceName(), astiav.Error(ret))
	}
	live.Add(1)
	if ret := C.podium_hwframes_init(hf.device, &hf.frames, C.enum_AVPixelFormat(hwFmt),
		C.enum_AVPixelFormat(sw), C.int(w), C.int(h), hwPoolSize); ret < 0 {
		hf.frames = nil
		return nil, fmt.Errorf("%s frames pool %dx%d %s on %s: %w", t, w, h, sw, hf.deviceName(), astiav.Error(ret))
	}
	live.Add(1)
	hf.frame = allocFrame()
	return hf, nil
}

func (hf *hwFrames) deviceName() string {
	if hf.path == "" {
		return "(default)"
	}
	return hf.path
}

// codecContextPointer returns cc's AVCodecContext. v0.16.0 has no
// UnsafePointer accessor on CodecContext; its first field is the C
// pointer, and the AVClass check makes sure of it at run time (a later
// go-astiav with another layout fails here instead of corrupting memory).
func codecContextPointer(cc *astiav.CodecContext) (*C.AVCodecContext, error) {
	if cc == nil {
		return nil, errors.New("no codec context")
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(cc))
	if C.podium_is_codec_context(p) == 0 {
		return nil, errors.New("go-astiav's CodecContext layout changed: cannot attach hardware frames")
	}
	return (*C.AVCodecContext)(p), nil
}

// attach gives cc a reference to the pool and makes it take hardware
// frames. avcodec_free_context drops that reference.
func (hf *hwFrames) attach(cc *astiav.CodecContext) error {
	p, err := codecContextPointer(cc)
	if err != nil {
		return err
	}
	if ret := C.podium_attach_hwframes(p, hf.frames, C.enum_AVPixelFormat(hf.hwFmt)); ret < 0 {
		return fmt.Errorf("attach %s frames: %w", hf.kind, astiav.Error(ret))
	}
	return nil
}

// upload copies src into a frame of the pool, with src's timestamps. The
// returned frame is valid until the caller unrefs it, at the latest
// before the next upload.
func (hf *hwFrames) upload(src *astiav.Frame) (*astiav.Frame, error) {
	hf.frame.Unref()
	if ret := C.podium_upload(hf.frames, (*C.AVFrame)(hf.frame.UnsafePointer()),
		(*C.AVFrame)(src.UnsafePointer())); ret < 0 {
		return nil, fmt.Errorf("to %s frame: %w", hf.kind, astiav.Error(ret))
	}
	return hf.frame, nil
}

// close frees the frame, the pool and the device; safe on a partly opened
// one. The encoder may still hold its own reference to the pool until it
// is freed.
func (hf *hwFrames) close() {
	freeFrame(hf.frame)
	hf.frame = nil
	if hf.frames != nil {
		C.av_buffer_unref(&hf.frames)
		live.Add(-1)
	}
	if hf.device != nil {
		C.av_buffer_unref(&hf.device)
		live.Add(-1)
	}
}
