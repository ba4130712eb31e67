package stream

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

// ErrReaderClosed is returned by Read after the reader itself was closed.
var ErrReaderClosed = errors.New("reader closed")

// Reader is one consumer of a stream, with its own bounded queue. Its Read
// methods must be called from one goroutine.
type Reader struct {
	st     *Stream
	info   ClientInfo
	since  time.Time
	notify chan struct{}

	mu        sync.Mutex
	direct    DirectFunc
	busy      bool // the consumer holds packets it has not finished writing
	poke      bool // a direct write left work for the consumer's goroutine
	ring      []media.Packet
	head, n   int
	bytes     int
	maxLag    time.Duration // 0: none; else the queue's longest span of DTS
	waitKey   bool          // dropping until the next video keyframe
	countWait bool          // ...because of an overflow (counted as drops), not a fresh start
	done      bool          // the publisher left: drain, then io.EOF
	closed    bool
	meta      media.Metadata
	metaVer   uint64
	dropped   uint64
	unwarned  uint64 // drops not yet reported in a warning
	lastWarn  time.Time

	out counters
}

func newReader(s *Stream, info ClientInfo) *Reader {
	return &Reader{
		st:      s,
		info:    info,
		since:   time.Now(),
		notify:  make(chan struct{}, 1),
		waitKey: s.video != nil, // start on a keyframe: the GOP cache's first packet, or the next one
	}
}

// Stream is the stream this reader reads.
func (r *Reader) Stream() *Stream { return r.st }

// Info describes the reader.
func (r *Reader) Info() ClientInfo { return r.info }

// push queues p, or drops it by the drop policy. Called with r.st.mu held.
func (r *Reader) push(p *media.Packet, hasVideo bool) {
	opts := &r.st.hub.opts
	var warn uint64
	r.mu.Lock()
	if r.done || r.closed {
		r.mu.Unlock()
		return
	}
	if r.waitKey {
		if p.IsVideoKey() || !hasVideo {
			r.waitKey = false
		} else {
			if r.countWait {
				r.dropped++
				r.unwarned++
			}
			r.mu.Unlock()
			return
		}
	}
	if r.n == opts.QueuePackets || (r.n > 0 && (r.bytes+len(p.Data) > opts.QueueBytes ||
		(r.maxLag > 0 && p.DTS-r.ring[r.head].DTS > r.maxLag))) {
		// Too slow: lose the backlog, resume decodable at a keyframe.
		lost := uint64(r.n)
		r.clearLocked()
		r.waitKey = hasVideo && !p.IsVideoKey()
		r.countWait = true
		if r.waitKey {
			lost++
		}
		r.dropped += lost
		r.unwarned += lost
		if now := time.Now(); now.Sub(r.lastWarn) >= opts.DropWarnInterval {
			warn, r.unwarned, r.lastWarn = r.unwarned, 0, now
		}
		if r.waitKey {
			r.mu.Unlock()
			r.warn(warn)
			return
		}
	}
	if r.direct != nil && r.n == 0 && !r.busy {
		switch r.direct(p, r.meta, r.metaVer) {
		case DirectSent:
			r.mu.Unlock()
			r.warn(warn)
			r.out.add(len(p.Data), p.Track.Kind == media.KindVideo)
			return
		case DirectPending:
			r.busy, r.poke = true, true
			r.mu.Unlock()
			r.warn(warn)
			r.out.add(len(p.Data), p.Track.Kind == media.KindVideo)
			r.signal()
			return
		}
	}
	if r.n == len(r.ring) {
		r.growLocked(opts.QueuePackets)
	}
	r.ring[(r.head+r.n)%len(r.ring)] = *p
	r.n++
	r.bytes += len(p.Data)
	r.mu.Unlock()
	r.warn(warn)
	r.signal()
}

// Ring sizes: a reader's queue starts empty and doubles from minRing up
// to QueuePackets as packets wait in it; a drained queue longer than
// keepRing is let go. A player that keeps up takes its packets on the
// publisher's goroutine (SetDirect), so its queue holds a new player's GOP
// burst and what arrives while a write blocks: a full 1024-slot ring per
// reader was 57 KB of each viewer's ~360 KB on an edge (bench/edge).
const (
	minRing  = 16
	keepRing = 256
)

// growLocked doubles the ring (up to limit slots), keeping the queue's order.
func (r *Reader) growLocked(limit int) {
	n := min(max(minRing, 2*len(r.ring)), limit)
	ring := make([]media.Packet, n)
	for i := range r.n {
		ring[i] = r.ring[(r.head+i)%len(r.ring)]
	}
	r.ring, r.head = ring, 0
}

func (r *Reader) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// DirectResult is what a DirectFunc did with a packet.
type DirectResult int

const (
	// DirectSent: written; nothing left to do.
	DirectSent DirectResult = iota
	// DirectPending: taken, but the consumer's goroutine must finish the
	// job (e.g. bytes the socket did not take): ReadBatch returns at once.
	DirectPending
	// DirectRefused: not taken; the hub queues it as usual.
	DirectRefused
)

// DirectFunc takes a packet on the publisher's goroutine. It must not
// block: it is called with the stream's locks held.
type DirectFunc func(p *media.Packet, meta media.Metadata, metaVer uint64) DirectResult

// SetDirect lets a batch consumer take packets on the publisher's
// goroutine while it keeps up, which saves waking the consumer's own
// goroutine for every packet (the cost that dominates a relay). Whenever
// the consumer is behind (ReadBatch handed it packets, or fn returned
// DirectPending), packets are queued as usual until it calls Done. fn is
// never called concurrently with the consumer's handling of a batch.
func (r *Reader) SetDirect(fn DirectFunc) {
	r.mu.Lock()
	r.direct = fn
	r.mu.Unlock()
}

// SetMaxLag bounds how far behind live the reader may fall: when its
// queue would span more than d of media time, the backlog is dropped as
// on overflow and the reader resumes at the next keyframe. 0 (the
// default) bounds only the queue's packets and bytes.
func (r *Reader) SetMaxLag(d time.Duration) {
	r.mu.Lock()
	r.maxLag = d
	r.mu.Unlock()
}

// Done tells the hub that a direct consumer has finished the batch
// ReadBatch gave it: direct writes may resume.
func (r *Reader) Done() {
	r.mu.Lock()
	r.busy = false
	r.mu.Unlock()
}

func (r *Reader) warn(n uint64) {
	if n > 0 {
		r.st.log.Warn("reader is too slow, discarding packets",
			"reader", r.info.Protocol, "remote", r.info.Remote, "discarded", n)
	}
}

func (r *Reader) clearLocked() {
	for r.n > 0 {
		r.ring[r.head] = media.Packet{}
		r.head = (r.head + 1) % len(r.ring)
		r.n--
	}
	r.head, r.bytes = 0, 0
}

func (r *Reader) setMetadata(m media.Metadata, ver uint64) {
	r.mu.Lock()
	r.meta, r.metaVer = m, ver
	r.mu.Unlock()
	r.signal()
}

// Metadata returns the stream's metadata and its version; the version
// changes whenever the publisher sends new metadata.
func (r *Reader) Metadata() (media.Metadata, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meta, r.metaVer
}

func (r *Reader) finish() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
	r.signal()
}

// Read returns the next packet, waiting for one. It returns io.EOF once the
// publisher has left and the queue is drained.
func (r *Reader) Read(ctx context.Context) (media.Packet, error) {
	for {
		r.mu.Lock()
		if r.n > 0 {
			p := r.ring[r.head]
			r.ring[r.head] = media.Packet{}
			r.head = (r.head + 1) % len(r.ring)
			r.n--
			r.bytes -= len(p.Data)
			r.mu.Unlock()
			r.out.add(len(p.Data), p.Track.Kind == media.KindVideo)
			return p, nil
		}
		err := r.idleErrLocked()
		r.mu.Unlock()
		if err != nil {
			return media.Packet{}, err
		}
		if err := r.wait(ctx); err != nil {
			return media.Packet{}, err
		}
	}
}

// ReadBatch appends every queued packet to dst, waiting until there is at
// least one; it is Read for consumers that write in batches. With a
// DirectFunc set it may return an empty batch (a direct write left work),
// and the consumer must call Done when it has handled what it got.
func (r *Reader) ReadBatch(ctx context.Context, dst []media.Packet) ([]media.Packet, error) {
	for {
		r.mu.Lock()
		if r.n > 0 {
			var bytes, video int
			count := r.n
			for r.n > 0 {
				p := r.ring[r.head]
				r.ring[r.head] = media.Packet{}
				r.head = (r.head + 1) % len(r.ring)
				r.n--
				bytes += len(p.Data)
				if p.Track.Kind == media.KindVideo {
					video++
				}
				dst = append(dst, p)
			}
			r.bytes = 0
			r.head = 0
			if len(r.ring) > keepRing {
				r.ring = nil // a burst's ring: don't keep it for the session
			}
			r.poke = false
			if r.direct != nil {
				r.busy = true
			}
			r.mu.Unlock()
			r.out.addN(bytes, count, video)
			return dst, nil
		}
		if r.poke {
			r.poke = false // busy stays set: the consumer has work
			r.mu.Unlock()
			return dst, nil
		}
		err := r.idleErrLocked()
		r.mu.Unlock()
		if err != nil {
			return dst, err
		}
		if err := r.wait(ctx); err != nil {
			return dst, err
		}
	}
}

func (r *Reader) idleErrLocked() error {
	switch {
	case r.closed:
		return ErrReaderClosed
	case r.done:
		return io.EOF
	}
	return nil
}

func (r *Reader) wait(ctx context.Context) error {
	select {
	case <-r.notify:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close detaches the reader from its stream.
func (r *Reader) Close() {
	r.st.removeReader(r)
	r.mu.Lock()
	r.closed = true
	r.clearLocked()
	r.mu.Unlock()
	r.signal()
}

// ReaderStats is a snapshot of a reader.
type ReaderStats struct {
	Info    ClientInfo
	Since   time.Time
	Out     CounterStats
	Queued  int
	Dropped uint64
}

// Stats returns a snapshot of the reader.
func (r *Reader) Stats() ReaderStats {
	r.mu.Lock()
	s := ReaderStats{Info: r.info, Since: r.since, Queued: r.n, Dropped: r.dropped}
	r.mu.Unlock()
	s.Out = r.out.stats()
	return s
}
