package av

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Filter is a libav filter graph with one input and one output.
type Filter struct {
	graph *astiav.FilterGraph
	src   *astiav.FilterContext
	sink  *astiav.FilterContext
	frame *astiav.Frame
}

// newFilter builds src → desc → sink. srcName is "abuffer" or "buffer".
func newFilter(srcName string, srcArgs astiav.FilterArgs, desc string) (f *Filter, err error) {
	sinkName := "buffersink"
	if srcName == "abuffer" {
		sinkName = "abuffersink"
	}
	x := &Filter{}
	defer func() {
		if err != nil {
			x.Close() // the results were set to nil by the return
		}
	}()
	f = x
	if f.graph = allocFilterGraph(); f.graph == nil {
		return nil, errors.New("alloc filter graph")
	}
	f.graph.SetThreadCount(1)
	src, sink := astiav.FindFilterByName(srcName), astiav.FindFilterByName(sinkName)
	if src == nil || sink == nil {
		return nil, fmt.Errorf("filters %s/%s missing from this FFmpeg build", srcName, sinkName)
	}
	if f.src, err = f.graph.NewFilterContext(src, "in", srcArgs); err != nil {
		return nil, fmt.Errorf("filter source %s: %w", srcArgs, err)
	}
	if f.sink, err = f.graph.NewFilterContext(sink, "out", nil); err != nil {
		return nil, fmt.Errorf("filter sink: %w", err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(f.src)
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(f.sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	if err = f.graph.Parse(desc, inputs, outputs); err != nil {
		return nil, fmt.Errorf("filter %q: %w", desc, err)
	}
	if err = f.graph.Configure(); err != nil {
		return nil, fmt.Errorf("configure filter %q: %w", desc, err)
	}
	f.frame = allocFrame()
	return f, nil
}

// Push sends in (nil flushes) and calls emit for each output frame, valid
// only during the call.
func (f *Filter) Push(in *astiav.Frame, emit func(*astiav.Frame) error) error {
	if err := f.src.BuffersrcAddFrame(in, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef)); err != nil {
		return fmt.Errorf("filter input: %w", err)
	}
	for {
		if err := f.sink.BuffersinkGetFrame(f.frame, astiav.NewBuffersinkFlags()); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("filter output: %w", err)
		}
		err := emit(f.frame)
		f.frame.Unref()
		if err != nil {
			return err
		}
	}
}

// Close frees the graph; safe on a partly built one.
func (f *Filter) Close() {
	freeFrame(f.frame)
	// go-astiav registers every FilterContext it wraps in a global map (for
	// its log callback) and forgets it only in FilterContext.Free, never
	// when the graph frees its filters: without these two calls each
	// closed filter left two entries behind, pointing at freed memory (a
	// soak's heap profile showed the map growing). avfilter_free takes the
	// context out of its graph, which then frees the rest.
	for _, c := range []*astiav.FilterContext{f.sink, f.src} {
		if c != nil {
			c.Free()
		}
	}
	freeFilterGraph(f.graph)
	f.frame, f.graph, f.src, f.sink = nil, nil, nil, nil
}

// channelsName spells a layout for a filter description. ChannelLayout's
// String() carries a NUL that truncates the C string (DESIGN field notes).
func channelsName(n int) string {
	if n >= 2 {
		return "stereo"
	}
	return "mono"
}

// AudioFormat identifies the format of decoded audio frames: a change
// means the resampler must be rebuilt.
type AudioFormat struct {
	Rate     int
	Channels int
	Format   astiav.SampleFormat
}

// FrameAudioFormat reads f's format.
func FrameAudioFormat(f *astiav.Frame) AudioFormat {
	return AudioFormat{Rate: f.SampleRate(), Channels: f.ChannelLayout().NbChannels(), Format: f.SampleFormat()}
}

// NewResampler converts frames of format in to planar float at rate and
// channels, in frames of exactly frameSize samples (what AAC takes):
// abuffer → aresample → aformat → asetnsamples → abuffersink.
func NewResampler(in AudioFormat, rate, channels, frameSize int) (*Filter, error) {
	args := astiav.FilterArgs{
		"time_base":      fmt.Sprintf("1/%d", in.Rate),
		"sample_rate":    fmt.Sprint(in.Rate),
		"sample_fmt":     in.Format.Name(),
		"channel_layout": channelsName(in.Channels),
	}
	desc := fmt.Sprintf("aresample=%d,aformat=sample_fmts=fltp:channel_layouts=%s,asetnsamples=n=%d:p=0",
		rate, channelsName(channels), frameSize)
	return newFilter("abuffer", args, desc)
}

// VideoFormat identifies decoded video frames: a change rebuilds the scaler.
type VideoFormat struct {
	Width, Height int
	Format        astiav.PixelFormat
}

// FrameVideoFormat reads f's format.
func FrameVideoFormat(f *astiav.Frame) VideoFormat {
	return VideoFormat{Width: f.Width(), Height: f.Height(), Format: f.PixelFormat()}
}

// NewScaler converts frames of format in to width x height in pixel format
// out (frame times in milliseconds); fps > 0 also resamples the frame rate.
func NewScaler(in VideoFormat, width, height int, out astiav.PixelFormat, fps float64) (*Filter, error) {
	args := astiav.FilterArgs{
		"video_size":   fmt.Sprintf("%dx%d", in.Width, in.Height),
		"pix_fmt":      fmt.Sprint(int(in.Format)),
		"time_base":    "1/1000",
		"pixel_aspect": "1/1",
	}
	desc := fmt.Sprintf("scale=%d:%d:flags=bilinear,format=pix_fmts=%s", width, height, out.Name())
	if fps > 0 {
		desc += fmt.Sprintf(",fps=fps=%g", fps)
	}
	return newFilter("buffer", args, desc)
}
