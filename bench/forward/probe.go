package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"
)

// silenceLal turns off lal's logger (several lines per session on stdout).
func silenceLal() {
	l, err := nazalog.New(func(o *nazalog.Option) {
		o.Level = nazalog.LevelPanic
		o.IsToStdout = false
	})
	if err == nil {
		lalrtmp.Log = l
		nazalog.SetGlobalLogger(l)
	}
}

// hopProbe measures what one forward hop adds for one stream and one
// destination: it plays the stream from the master (live/sI) and its
// forwarded copy from the sink (APP/sI) at the same time, and matches the
// H.264 access units of the two by their bytes (a forward copies them). For
// each matched frame, sink arrival - master arrival is the forward hop:
// the master's push path, the loopback, and the sink's own relay to us.
type hopProbe struct {
	name            string
	masterURL       string
	sinkURL         string
	seed            maphash.Seed
	matchTo         time.Duration // an unmatched frame older than this is dropped
	masterConnected atomic.Bool
	sinkConnected   atomic.Bool
	reconnects      atomic.Int64
	lastErr         atomic.Value // string

	mu        sync.Mutex
	master    map[uint64]time.Time
	sink      map[uint64]time.Time
	lastPrune time.Time
	validFrom time.Time // both sessions up and the master's GOP-cache burst over
	active    bool      // inside the latency window
	deltas    []time.Duration
	sinkSeen  int64 // video frames the sink session delivered in the window
}

func newHopProbe(name, masterURL, sinkURL string) *hopProbe {
	return &hopProbe{name: name, masterURL: masterURL, sinkURL: sinkURL, seed: maphash.MakeSeed(),
		matchTo: 5 * time.Second, master: map[uint64]time.Time{}, sink: map[uint64]time.Time{}}
}

// burst is how long after a (re)connect frames are ignored: a new player
// of Podium first gets the GOP cache (up to one GOP, 2 s here) in one burst,
// and those arrival times say nothing about the hop.
const burst = time.Second

// run keeps both sessions playing until ctx ends, reconnecting if one drops.
func (p *hopProbe) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.session(ctx, p.masterURL, false) })
	wg.Go(func() { p.session(ctx, p.sinkURL, true) })
	wg.Wait()
}

func (p *hopProbe) session(ctx context.Context, url string, isSink bool) {
	connected := &p.masterConnected
	if isSink {
		connected = &p.sinkConnected
	}
	for ctx.Err() == nil {
		s := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
			o.PullTimeoutMs = 10000
			o.ReadAvTimeoutMs = 10000
		}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) { p.onMsg(msg, isSink) })
		err := s.Pull(url)
		if err == nil {
			connected.Store(true)
			p.connectedNow()
			select {
			case <-ctx.Done():
				_ = s.Dispose()
				return
			case err = <-s.WaitChan():
			}
		}
		_ = s.Dispose()
		connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		p.reconnects.Add(1)
		p.lastErr.Store(fmt.Sprintf("%s: %v", url, err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// connectedNow moves validFrom past the burst of a (re)connected session.
func (p *hopProbe) connectedNow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validFrom = time.Now().Add(burst)
	clear(p.master)
	clear(p.sink)
}

func (p *hopProbe) setActive(on bool) {
	p.mu.Lock()
	p.active = on
	p.mu.Unlock()
}

func (p *hopProbe) onMsg(msg base.RtmpMsg, isSink bool) {
	now := time.Now()
	pl := msg.Payload
	// AVC NALU packets only (not sequence headers): 1 byte frame type/codec,
	// 1 byte packet type, 3 bytes composition time, then the NAL units.
	if msg.Header.MsgTypeId != base.RtmpTypeIdVideo || len(pl) <= 5 || pl[0]&0x0f != 7 || pl[1] != 1 {
		return
	}
	h := maphash.Bytes(p.seed, pl[5:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if isSink && p.active {
		p.sinkSeen++
	}
	mine, other := p.master, p.sink
	if isSink {
		mine, other = p.sink, p.master
	}
	if them, ok := other[h]; ok {
		delete(other, h)
		m, s := them, now
		if !isSink {
			m, s = now, them
		}
		if p.active && m.After(p.validFrom) && s.After(p.validFrom) {
			p.deltas = append(p.deltas, s.Sub(m))
		}
	} else {
		mine[h] = now
	}
	if now.Sub(p.lastPrune) > time.Second {
		p.lastPrune = now
		for _, m := range []map[uint64]time.Time{p.master, p.sink} {
			for k, at := range m {
				if now.Sub(at) > p.matchTo {
					delete(m, k)
				}
			}
		}
	}
}

// result is the matched deltas and the sink's video frames in the window.
func (p *hopProbe) result() ([]time.Duration, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.deltas), p.sinkSeen
}

// latencyStats summarises matched deltas in milliseconds.
type latencyStats struct {
	Frames    int     `json:"frames_matched"`
	SinkVideo int64   `json:"sink_video_frames"`
	MedianMS  float64 `json:"median_ms"`
	P95MS     float64 `json:"p95_ms"`
	MinMS     float64 `json:"min_ms"`
	MaxMS     float64 `json:"max_ms"`
}

func summarize(ds []time.Duration, sinkVideo int64) latencyStats {
	s := latencyStats{Frames: len(ds), SinkVideo: sinkVideo}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(f float64) float64 { return ms(ds[min(len(ds)-1, int(f*float64(len(ds))))]) }
	s.MedianMS, s.P95MS, s.MinMS, s.MaxMS = q(0.5), q(0.95), ms(ds[0]), ms(ds[len(ds)-1])
	return s
}
