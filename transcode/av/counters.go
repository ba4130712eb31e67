package av

import (
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// live counts the libav objects the wrappers hold (codec contexts, filter
// graphs, frames, packets). It is process-wide because libav's heap is: a
// leak test runs many pipelines and expects it back at zero. It is the one
// package-level variable, and is only ever changed atomically.
var live atomic.Int64

// Live returns how many libav objects the wrappers currently hold.
func Live() int64 { return live.Load() }

func allocPacket() *astiav.Packet {
	live.Add(1)
	return astiav.AllocPacket()
}

func freePacket(p *astiav.Packet) {
	if p != nil {
		p.Free()
		live.Add(-1)
	}
}

func allocFrame() *astiav.Frame {
	live.Add(1)
	return astiav.AllocFrame()
}

func freeFrame(f *astiav.Frame) {
	if f != nil {
		f.Free()
		live.Add(-1)
	}
}

func allocCodecContext(c *astiav.Codec) *astiav.CodecContext {
	cc := astiav.AllocCodecContext(c)
	if cc != nil {
		live.Add(1)
	}
	return cc
}

func freeCodecContext(cc *astiav.CodecContext) {
	if cc != nil {
		cc.Free()
		live.Add(-1)
	}
}

func allocFilterGraph() *astiav.FilterGraph {
	g := astiav.AllocFilterGraph()
	if g != nil {
		live.Add(1)
	}
	return g
}

func freeFilterGraph(g *astiav.FilterGraph) {
	if g != nil {
		g.Free()
		live.Add(-1)
	}
}
