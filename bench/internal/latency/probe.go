// Package latency measures what one hop (a forward push, a transcode) adds
// to a live stream: a Probe plays the stream before and after the hop at
// the same time and matches their H.264 access units by their bytes (the
// hop copies the video), so each matched frame's two arrival times here
// differ by the hop.
package latency

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
)

// burst is how long after a session (re)connects frames are ignored: a new
// player first gets the server's GOP cache (up to one GOP, 2 s in the
// benches) in one burst, and those arrival times say nothing about the hop.
const burst = time.Second

// FLV SoundFormat of AAC (FLV spec, E.4.2.1).
const soundFormatAAC = 10

// Probe plays In (before the hop) and Out (after it) until its context
// ends, reconnecting a session that drops, and collects the hop of every
// video frame it matches while active. With Audio set it also estimates
// the audio hop (see onOutAudio).
type Probe struct {
	Name   string
	InURL  string
	OutURL string
	Audio  bool // set before Run

	seed    maphash.Seed
	matchTo time.Duration // an unmatched frame older than this is dropped

	mu        sync.Mutex
	in, out   map[uint64]arrival
	lastPrune time.Time
	validFrom time.Time // both sessions connected + the GOP-cache burst is over
	active    bool      // inside the measurement window
	deltas    []time.Duration
	outVideo  int64 // video frames Out delivered while active
	// Audio: In's audio arrivals by timestamp, Out's timestamp offset
	// (learnt from matched video), and the audio hop estimates.
	inAudio     []arrival
	tsOffset    int64 // Out's RTMP timestamp - In's, ms
	haveOffset  bool
	audioDeltas []time.Duration

	reconnects      atomic.Int64
	inAudioFormats  [16]atomic.Int64 // In's audio messages by SoundFormat
	outAudioFormats [16]atomic.Int64 // Out's
	lastErr         atomic.Value     // string
}

// NewProbe is a probe of the hop from inURL to outURL.
func NewProbe(name, inURL, outURL string) *Probe {
	return &Probe{Name: name, InURL: inURL, OutURL: outURL, seed: maphash.MakeSeed(), matchTo: 5 * time.Second,
		in: map[uint64]arrival{}, out: map[uint64]arrival{}}
}

// arrival is when a message arrived here, with its RTMP timestamp.
type arrival struct {
	at time.Time
	ts uint32
}

// Run keeps both sessions playing until ctx ends, reconnecting if one drops.
func (p *Probe) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.session(ctx, p.InURL, false) })
	wg.Go(func() { p.session(ctx, p.OutURL, true) })
	wg.Wait()
}

func (p *Probe) session(ctx context.Context, url string, isOut bool) {
	for ctx.Err() == nil {
		s := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
			o.PullTimeoutMs = 10000
			o.ReadAvTimeoutMs = 10000
		}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) { p.onMsg(msg, isOut) })
		err := s.Pull(url)
		if err == nil {
			p.connectedNow()
			select {
			case <-ctx.Done():
				_ = s.Dispose()
				return
			case err = <-s.WaitChan():
			}
		}
		_ = s.Dispose()
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
func (p *Probe) connectedNow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validFrom = time.Now().Add(burst)
	clear(p.in)
	clear(p.out)
	p.inAudio = p.inAudio[:0]
	p.haveOffset = false
}

// SetActive starts (true) or ends (false) the window whose frames count.
func (p *Probe) SetActive(on bool) {
	p.mu.Lock()
	p.active = on
	p.mu.Unlock()
}

func (p *Probe) onMsg(msg base.RtmpMsg, isOut bool) {
	now := time.Now()
	pl := msg.Payload
	switch msg.Header.MsgTypeId {
	case base.RtmpTypeIdAudio:
		if len(pl) > 0 {
			p.onAudio(now, msg.Header.TimestampAbs, pl, isOut)
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
		p.outVideo++
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

// onAudio counts an audio message by SoundFormat and, with Audio, feeds
// the audio hop estimate: every In message, and Out's raw AAC frames (not
// the sequence header).
func (p *Probe) onAudio(now time.Time, ts uint32, pl []byte, isOut bool) {
	f := pl[0] >> 4
	if !isOut {
		p.inAudioFormats[f].Add(1)
		if p.Audio {
			p.onInAudio(now, ts)
		}
		return
	}
	p.outAudioFormats[f].Add(1)
	if p.Audio && f == soundFormatAAC && len(pl) > 1 && pl[1] == 1 {
		p.onOutAudio(now, ts)
	}
}

// onInAudio remembers when each input audio packet arrived (5 s of them).
func (p *Probe) onInAudio(now time.Time, ts uint32) {
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
// frames show, falls inside one input packet; the estimate is the time
// from that packet's arrival to this frame's. It includes what any AAC
// encoder must wait for (the rest of its 1024-sample frame, and its one
// frame of look-ahead), so it is larger than the video hop by construction.
func (p *Probe) onOutAudio(now time.Time, ts uint32) {
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

// Result is the video hops matched while active, the audio hop estimates
// (with Audio), and the video frames Out delivered while active.
func (p *Probe) Result() (video, audio []time.Duration, outVideo int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.deltas), slices.Clone(p.audioDeltas), p.outVideo
}

// AudioFormats is how many audio messages In and Out delivered so far, by
// FLV SoundFormat (10 AAC, 11 Speex, ...).
func (p *Probe) AudioFormats() (in, out [16]int64) {
	for f := range in {
		in[f], out[f] = p.inAudioFormats[f].Load(), p.outAudioFormats[f].Load()
	}
	return in, out
}

// Reconnects is how often a session dropped and was reconnected.
func (p *Probe) Reconnects() int64 { return p.reconnects.Load() }

// LastErr is why a session last dropped ("" if none did).
func (p *Probe) LastErr() string {
	s, _ := p.lastErr.Load().(string)
	return s
}
