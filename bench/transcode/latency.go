package main

import (
	"cmp"
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

// hopProbe measures the added latency of one server's transcode hop for one
// stream: it plays the input (live/sI) and the normalized twin at the same
// time and matches H.264 access units by their bytes (the video is copied,
// so they are identical). For each matched frame the difference of the two
// arrival times here is what the hop adds on top of a plain relay.
type hopProbe struct {
	name    string
	inURL   string
	outURL  string
	seed    maphash.Seed
	matchTo time.Duration // an unmatched frame older than this is dropped

	mu        sync.Mutex
	in, out   map[uint64]arrival
	lastPrune time.Time
	validFrom time.Time // both sessions connected + the GOP-cache burst is over
	active    bool      // inside the measurement window
	deltas    []time.Duration
	// Audio: the input's audio arrivals by timestamp, the output's timestamp
	// offset (learnt from matched video), and the audio hop estimates.
	inAudio     []arrival
	tsOffset    int64 // output RTMP timestamp - input RTMP timestamp, ms
	haveOffset  bool
	audioDeltas []time.Duration

	inConnected, outConnected atomic.Bool
	reconnects                atomic.Int64
	outAAC, outOtherAudio     atomic.Int64 // audio on the twin, by SoundFormat
	outVideo                  atomic.Int64 // video AUs on the twin (window)
	inSpeex                   atomic.Int64 // audio on the input that is Speex (SoundFormat 11)
	lastErr                   atomic.Value // string
}

func newHopProbe(name, inURL, outURL string) *hopProbe {
	return &hopProbe{name: name, inURL: inURL, outURL: outURL, seed: maphash.MakeSeed(), matchTo: 5 * time.Second,
		in: map[uint64]arrival{}, out: map[uint64]arrival{}}
}

// arrival is when a message arrived here, with its RTMP timestamp.
type arrival struct {
	at time.Time
	ts uint32
}

// burst is how long after both sessions are up frames are still ignored: a
// new player first gets the server's GOP cache (up to one GOP, 2 s here) in
// one burst, and those arrival times say nothing about the hop.
const burst = time.Second

// run keeps both sessions playing until ctx ends, reconnecting if one drops.
func (p *hopProbe) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.session(ctx, p.inURL, false) })
	wg.Go(func() { p.session(ctx, p.outURL, true) })
	wg.Wait()
}

func (p *hopProbe) session(ctx context.Context, url string, isOut bool) {
	connected := &p.inConnected
	if isOut {
		connected = &p.outConnected
	}
	for ctx.Err() == nil {
		s := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
			o.PullTimeoutMs = 10000
			o.ReadAvTimeoutMs = 10000
		}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) { p.onMsg(msg, isOut) })
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

// connectedNow moves validFrom past the GOP burst of a (re)connected session.
func (p *hopProbe) connectedNow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validFrom = time.Now().Add(burst)
	clear(p.in)
	clear(p.out)
	p.inAudio = p.inAudio[:0]
	p.haveOffset = false
}

func (p *hopProbe) setActive(on bool) {
	p.mu.Lock()
	p.active = on
	p.mu.Unlock()
}

func (p *hopProbe) onMsg(msg base.RtmpMsg, isOut bool) {
	now := time.Now()
	pl := msg.Payload
	switch msg.Header.MsgTypeId {
	case base.RtmpTypeIdAudio:
		if len(pl) == 0 {
			return
		}
		f := pl[0] >> 4
		switch {
		case isOut && f == soundFormatAAC:
			p.outAAC.Add(1)
			if len(pl) > 1 && pl[1] == 1 { // raw AAC frame, not the sequence header
				p.onOutAudio(now, msg.Header.TimestampAbs)
			}
		case isOut:
			p.outOtherAudio.Add(1)
		case f == 11:
			p.inSpeex.Add(1)
			p.onInAudio(now, msg.Header.TimestampAbs)
		}
		return
	case base.RtmpTypeIdVideo:
	default:
		return
	}
	// AVC NALU packets only (not sequence headers): 1 byte frame type/codec,
	// 1 byte packet type, 3 bytes composition time, then the NAL units.
	if len(pl) <= 5 || pl[0]&0x0f != 7 || pl[1] != 1 {
		return
	}
	h := maphash.Bytes(p.seed, pl[5:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if isOut && p.active {
		p.outVideo.Add(1)
	}
	mine, other := p.in, p.out
	if isOut {
		mine, other = p.out, p.in
	}
	me := arrival{at: now, ts: msg.Header.TimestampAbs}
	if them, ok := other[h]; ok {
		delete(other, h)
		in, out := them, me
		if !isOut {
			in, out = me, them
		}
		p.tsOffset, p.haveOffset = int64(out.ts)-int64(in.ts), true
		if p.active && in.at.After(p.validFrom) && out.at.After(p.validFrom) {
			p.deltas = append(p.deltas, out.at.Sub(in.at))
		}
	} else {
		mine[h] = me
	}
	if now.Sub(p.lastPrune) > time.Second {
		p.lastPrune = now
		for _, m := range []map[uint64]arrival{p.in, p.out} {
			for k, a := range m {
				if now.Sub(a.at) > p.matchTo {
					delete(m, k)
				}
			}
		}
	}
}

// onInAudio remembers when each input audio packet arrived (5 s of them).
func (p *hopProbe) onInAudio(now time.Time, ts uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.inAudio); n > 0 && ts < p.inAudio[n-1].ts {
		p.inAudio = p.inAudio[:0] // timestamps went back: a new publish
	}
	p.inAudio = append(p.inAudio, arrival{at: now, ts: ts})
	if len(p.inAudio) > 1024 && now.Sub(p.inAudio[0].at) > p.matchTo {
		p.inAudio = slices.Delete(p.inAudio, 0, len(p.inAudio)/2)
	}
}

// onOutAudio estimates the audio hop for one AAC frame: its timestamp,
// mapped into the input's timeline with the offset that the matched video
// frames show, falls inside one input (Speex) packet; the estimate is the
// time from that packet's arrival to this frame's. It includes what any AAC
// encoder must wait for (the rest of its 1024-sample frame, and its one
// frame of look-ahead), so it is larger than the video hop by construction.
func (p *hopProbe) onOutAudio(now time.Time, ts uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.haveOffset || !p.active || now.Before(p.validFrom) {
		return
	}
	want := int64(ts) - p.tsOffset
	i, found := slices.BinarySearchFunc(p.inAudio, want, func(a arrival, t int64) int {
		return cmp.Compare(int64(a.ts), t)
	})
	if !found {
		i-- // the last packet that starts before want
	}
	if i < 0 || i >= len(p.inAudio) || want-int64(p.inAudio[i].ts) > 100 || p.inAudio[i].at.Before(p.validFrom) {
		return
	}
	p.audioDeltas = append(p.audioDeltas, now.Sub(p.inAudio[i].at))
}

// result is the matched deltas and counters, read after the window.
func (p *hopProbe) result() (deltas, audio []time.Duration, outVideo int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.deltas), slices.Clone(p.audioDeltas), p.outVideo.Load()
}

// latencyStats summarises matched deltas in milliseconds.
type latencyStats struct {
	Frames   int     `json:"frames_matched"`
	OutVideo int64   `json:"out_video_frames"`
	MedianMS float64 `json:"median_ms"`
	P95MS    float64 `json:"p95_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
}

func summarize(ds []time.Duration, outVideo int64) latencyStats {
	s := latencyStats{Frames: len(ds), OutVideo: outVideo}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(f float64) float64 { return ms(ds[min(len(ds)-1, int(f*float64(len(ds))))]) }
	s.MedianMS, s.P95MS, s.MinMS, s.MaxMS = q(0.5), q(0.95), ms(ds[0]), ms(ds[len(ds)-1])
	return s
}
