package transcode

import (
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

// Bounds of the interleaver.
const (
	// maxHold: a packet waits at most this much media time (behind the
	// newest packet) for the other track; a track that lags more is taken
	// as stalled and holds nothing up. Audio leaves the AAC encoder
	// 20-50 ms behind the video copied beside it.
	maxHold = 400 * time.Millisecond
	// maxHeld bounds the packets held.
	maxHeld = 512
	// maxClamp: a packet that comes behind what was already written by up
	// to this much is written at the last time written (so the output
	// stays monotonic); one further behind is a timestamp discontinuity of
	// the input and keeps its time.
	maxClamp = time.Second
	// resetAfter: a packet this far behind the newest one is a jump of the
	// input's clock: what is held is written and the order starts anew.
	resetAfter = 2 * time.Second
)

// interleaver writes the pipeline's output in DTS order across tracks.
// Written as produced, the transcoded twin's audio would come up to ~40 ms
// behind the video before it (the encoder's delay), stepping DTS back at
// most audio packets; slaves, recorders, HLS and edges (which rebase on
// failover) need a monotonic stream. A packet is held until every flowing
// track has produced one at least as late, within maxHold of media time:
// latency is bounded, and a track that stalls or never comes (a dropped
// or absent audio track) holds the other for maxHold once, at the start.
type interleaver struct {
	held    []media.Packet // in DTS order (stable: equal times keep their order)
	last    [2]time.Duration
	seen    [2]bool
	first   time.Duration // DTS of the first packet since the start (or a reset)
	newest  time.Duration
	started bool
	out     time.Duration // DTS of the last packet written
	written bool
	late    uint64 // packets moved forward to keep the order
	emit    func(media.Packet)
}

func kindIndex(k media.Kind) int {
	if k == media.KindVideo {
		return 0
	}
	return 1
}

// push takes one output packet; it writes, through emit, every held
// packet that is ready.
func (il *interleaver) push(p media.Packet) {
	if il.started && p.DTS < il.newest-resetAfter {
		il.flush()
		il.started, il.seen, il.written = false, [2]bool{}, false
	}
	if !il.started {
		il.first, il.newest, il.started = p.DTS, p.DTS, true
	}
	k := kindIndex(p.Track.Kind)
	il.last[k], il.seen[k] = p.DTS, true
	il.newest = max(il.newest, p.DTS)
	i := len(il.held)
	for i > 0 && il.held[i-1].DTS > p.DTS {
		i--
	}
	il.held = append(il.held, media.Packet{})
	copy(il.held[i+1:], il.held[i:])
	il.held[i] = p
	il.release(false)
}

// flush writes everything held (the input ended).
func (il *interleaver) flush() { il.release(true) }

// ready reports whether the head packet, at DTS h, may be written: no
// flowing track can still produce an earlier one.
func (il *interleaver) ready(h time.Duration) bool {
	if len(il.held) > maxHeld || il.newest-h > maxHold {
		return true
	}
	for k := range il.seen {
		switch {
		case !il.seen[k]:
			if il.newest-il.first <= maxHold {
				return false // the other track may yet start
			}
		case il.last[k] < h && il.newest-il.last[k] <= maxHold:
			return false
		}
	}
	return true
}

func (il *interleaver) release(all bool) {
	n := 0
	for n < len(il.held) && (all || il.ready(il.held[n].DTS)) {
		p := il.held[n]
		if il.written && p.DTS < il.out && il.out-p.DTS <= maxClamp {
			il.late++
			p.DTS = il.out
			p.PTS = max(p.PTS, p.DTS)
		}
		il.out, il.written = p.DTS, true
		il.emit(p)
		n++
	}
	if n > 0 {
		m := copy(il.held, il.held[n:])
		clear(il.held[m:]) // let the payloads go
		il.held = il.held[:m]
	}
}
