package ui

import (
	"sync"

	"github.com/podiumlive/podium/ingest/stream"
)

// traffic turns the hub's per-stream and per-reader byte counters, which
// vanish when a stream or reader ends, into totals that only grow (what a
// Prometheus counter must be). It is updated once a tick; its figures are
// up to one tick old and may miss the last tick of a reader that leaves.
type traffic struct {
	mu      sync.Mutex
	streams map[uint64]*streamTraffic // by stream id
	// Bytes of streams that ended.
	endedIn, endedOut, endedDrop uint64
}

type streamTraffic struct {
	in      uint64
	gone    uint64                    // bytes sent to readers that left
	readers map[*stream.Reader]uint64 // live readers' bytes at the last sample
	out     uint64                    // gone + sum(readers)
	dropped uint64                    // the same, for dropped packets
	gDrop   uint64
	drops   map[*stream.Reader]uint64
}

func newTraffic() *traffic {
	return &traffic{streams: make(map[uint64]*streamTraffic)}
}

// sample reads every live stream's counters.
func (t *traffic) sample(live []*stream.Stream) {
	type reading struct {
		id      uint64
		in      uint64
		readers []*stream.Reader
		bytes   []uint64
		drops   []uint64
	}
	// Read outside the lock: the hub's locks are the publisher's.
	rs := make([]reading, len(live))
	for i, st := range live {
		rd := reading{id: st.ID(), readers: st.Readers()}
		rd.in = st.Stats().In.Bytes
		for _, r := range rd.readers {
			s := r.Stats()
			rd.bytes = append(rd.bytes, s.Out.Bytes)
			rd.drops = append(rd.drops, s.Dropped)
		}
		rs[i] = rd
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[uint64]bool, len(rs))
	for _, rd := range rs {
		seen[rd.id] = true
		st := t.streams[rd.id]
		if st == nil {
			st = &streamTraffic{}
			t.streams[rd.id] = st
		}
		st.in = rd.in
		readers := make(map[*stream.Reader]uint64, len(rd.readers))
		drops := make(map[*stream.Reader]uint64, len(rd.readers))
		var sum, dsum uint64
		for i, r := range rd.readers {
			readers[r] = rd.bytes[i]
			drops[r] = rd.drops[i]
			sum += rd.bytes[i]
			dsum += rd.drops[i]
		}
		for r, b := range st.readers {
			if _, ok := readers[r]; !ok {
				st.gone += b
				st.gDrop += st.drops[r]
			}
		}
		st.readers, st.drops = readers, drops
		st.out = st.gone + sum
		st.dropped = st.gDrop + dsum
	}
	for id, st := range t.streams {
		if !seen[id] {
			t.endedIn += st.in
			t.endedOut += st.out
			t.endedDrop += st.dropped
			delete(t.streams, id)
		}
	}
}

// trafficStats is one stream's totals.
type trafficStats struct {
	Out, Dropped uint64
}

// stream returns the totals of stream id (zero before its first sample).
func (t *traffic) stream(id uint64) trafficStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.streams[id]; st != nil {
		return trafficStats{Out: st.out, Dropped: st.dropped}
	}
	return trafficStats{}
}

// trafficTotals are the bytes received and sent, and the packets readers
// dropped, by every stream so far, ended or live.
type trafficTotals struct {
	In, Out, Dropped uint64
}

func (t *traffic) totals() trafficTotals {
	t.mu.Lock()
	defer t.mu.Unlock()
	tt := trafficTotals{In: t.endedIn, Out: t.endedOut, Dropped: t.endedDrop}
	for _, st := range t.streams {
		tt.In += st.in
		tt.Out += st.out
		tt.Dropped += st.dropped
	}
	return tt
}
