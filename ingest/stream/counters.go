package stream

import (
	"sync"
	"sync/atomic"
	"time"
)

// counters count a flow of packets; rates come from periodic sampling, so
// the packet path costs a few atomic adds.
type counters struct {
	bytes   atomic.Uint64
	packets atomic.Uint64
	video   atomic.Uint64

	mu        sync.Mutex
	lastAt    time.Time
	lastBytes uint64
	lastVideo uint64
	bitrate   float64
	fps       float64
}

func (c *counters) add(n int, video bool) {
	c.bytes.Add(uint64(n))
	c.packets.Add(1)
	if video {
		c.video.Add(1)
	}
}

func (c *counters) addN(bytes, packets, video int) {
	c.bytes.Add(uint64(bytes))
	c.packets.Add(uint64(packets))
	c.video.Add(uint64(video))
}

func (c *counters) sample(now time.Time) {
	b, v := c.bytes.Load(), c.video.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastAt.IsZero() {
		if d := now.Sub(c.lastAt).Seconds(); d > 0 {
			c.bitrate = float64(b-c.lastBytes) * 8 / d
			c.fps = float64(v-c.lastVideo) / d
		}
	}
	c.lastAt, c.lastBytes, c.lastVideo = now, b, v
}

// CounterStats is a snapshot of a flow.
type CounterStats struct {
	Bytes   uint64
	Packets uint64
	// Bitrate (bit/s) and FPS (video packets/s) over the last sample period.
	Bitrate float64
	FPS     float64
}

func (c *counters) stats() CounterStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CounterStats{
		Bytes: c.bytes.Load(), Packets: c.packets.Load(),
		Bitrate: c.bitrate, FPS: c.fps,
	}
}
