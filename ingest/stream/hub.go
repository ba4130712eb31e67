// Package stream is Podium's hub: the registry of live streams keyed by
// vhost/app/stream, each with one writer (its publisher) and any number of
// readers. It knows nothing about protocols: publishers and readers exchange
// media.Packets.
//
// Write never blocks. Each reader has its own bounded queue; a reader that
// falls behind drops its backlog and resumes at the next video keyframe (codec
// configuration travels with every packet as its *media.Track, so nothing a
// decoder needs is lost). A new reader starts at the last keyframe (GOP cache).
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Errors the hub returns; check with errors.Is.
var (
	ErrAlreadyPublishing = errors.New("stream is already being published")
	ErrNotFound          = errors.New("stream not found")
	ErrHubClosed         = errors.New("hub is closed")
)

// Key names a stream.
type Key struct {
	Vhost string
	App   string
	Name  string
}

func (k Key) String() string { return k.Vhost + "/" + k.App + "/" + k.Name }

// Options bound the memory a stream and its readers may hold.
type Options struct {
	// QueuePackets and QueueBytes bound each reader's queue.
	QueuePackets int
	QueueBytes   int
	// GOPCache keeps the packets since the last video keyframe for late
	// joiners, up to GOPMaxPackets/GOPMaxBytes (past that it is dropped
	// until the next keyframe).
	GOPCache      bool
	GOPMaxPackets int
	GOPMaxBytes   int
	// DropWarnInterval aggregates "reader is too slow" warnings.
	DropWarnInterval time.Duration
}

// DefaultOptions are sized for a few Mbit/s per stream.
func DefaultOptions() Options {
	return Options{
		QueuePackets:     1024,
		QueueBytes:       16 << 20,
		GOPCache:         true,
		GOPMaxPackets:    4096,
		GOPMaxBytes:      32 << 20,
		DropWarnInterval: 10 * time.Second,
	}
}

// EventType tells what happened to a stream.
type EventType int

const (
	EventPublish EventType = iota + 1
	EventUnpublish
	// EventDemand: a Subscribe started waiting for Key, which is not live
	// (Stream is nil): a source that publishes on demand (an RTSP pull)
	// can start then.
	EventDemand
)

// Event is delivered to listeners when a stream starts or stops, or is
// waited for.
type Event struct {
	Type   EventType
	Key    Key
	Stream *Stream // nil for EventDemand
}

// Hub is the registry of live streams.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	streams   map[Key]*Stream
	byID      map[uint64]*Stream
	nextID    uint64
	published chan struct{} // closed and replaced on every publish: wakes waiting players
	waiters   map[Key]map[*waiter]struct{}
	listeners []func(Event)
	closed    bool
}

// NewHub makes an empty hub.
func NewHub(opts Options, log *slog.Logger) *Hub {
	def := DefaultOptions()
	if opts.QueuePackets <= 0 {
		opts.QueuePackets = def.QueuePackets
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = def.QueueBytes
	}
	if opts.GOPMaxPackets <= 0 {
		opts.GOPMaxPackets = def.GOPMaxPackets
	}
	if opts.GOPMaxBytes <= 0 {
		opts.GOPMaxBytes = def.GOPMaxBytes
	}
	if opts.DropWarnInterval <= 0 {
		opts.DropWarnInterval = def.DropWarnInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		opts:      opts,
		log:       log,
		streams:   make(map[Key]*Stream),
		byID:      make(map[uint64]*Stream),
		published: make(chan struct{}),
		waiters:   make(map[Key]map[*waiter]struct{}),
	}
}

// waiter is a Subscribe waiting for a key that is not live.
type waiter struct {
	refused chan struct{} // closed by Refuse
	err     error
}

// Demand tells the sources that publish on demand that someone wants key
// without reading it yet (an HLS playlist request): it emits EventDemand.
func (h *Hub) Demand(key Key) {
	h.emit(Event{Type: EventDemand, Key: key})
}

// Refuse ends the wait of every Subscribe waiting for key: they return
// err, which should wrap ErrNotFound. A source that answered the demand
// calls it when it found nothing to publish (an edge whose origins lack
// the stream), so players learn it at once instead of at their timeout.
// It returns how many waits it ended.
func (h *Hub) Refuse(key Key, err error) int {
	h.mu.Lock()
	ws := h.waiters[key]
	delete(h.waiters, key)
	h.mu.Unlock()
	for w := range ws {
		w.err = err
		close(w.refused)
	}
	return len(ws)
}

// Waiting is the number of Subscribes waiting for key.
func (h *Hub) Waiting(key Key) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters[key])
}

func (h *Hub) addWaiter(key Key) *waiter {
	w := &waiter{refused: make(chan struct{})}
	h.mu.Lock()
	ws := h.waiters[key]
	if ws == nil {
		ws = make(map[*waiter]struct{})
		h.waiters[key] = ws
	}
	ws[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *Hub) removeWaiter(key Key, w *waiter) {
	h.mu.Lock()
	if ws := h.waiters[key]; ws != nil {
		delete(ws, w)
		if len(ws) == 0 {
			delete(h.waiters, key)
		}
	}
	h.mu.Unlock()
}

// Listen registers fn to be called, synchronously and outside the hub's
// locks, on every publish, unpublish and demand. fn must not block: start a
// goroutine for real work.
func (h *Hub) Listen(fn func(Event)) {
	h.mu.Lock()
	h.listeners = append(h.listeners, fn)
	h.mu.Unlock()
}

func (h *Hub) emit(ev Event) {
	h.mu.Lock()
	ls := h.listeners
	h.mu.Unlock()
	for _, fn := range ls {
		fn(ev)
	}
}

// Publish makes key live with one publisher. A second publisher on a live key
// gets ErrAlreadyPublishing; the first keeps publishing.
func (h *Hub) Publish(key Key, info ClientInfo) (*Publisher, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	if cur, ok := h.streams[key]; ok {
		h.mu.Unlock()
		return nil, fmt.Errorf("publish %s: %w (by %s since %s)", key, ErrAlreadyPublishing,
			cur.publisher.Remote, cur.since.Format(time.RFC3339))
	}
	h.nextID++
	st := newStream(h, h.nextID, key, info)
	h.streams[key] = st
	h.byID[st.id] = st
	close(h.published)
	h.published = make(chan struct{})
	h.mu.Unlock()

	h.emit(Event{Type: EventPublish, Key: key, Stream: st})
	return &Publisher{st: st}, nil
}

// Get returns the live stream at key, or nil.
func (h *Hub) Get(key Key) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[key]
}

// ByID returns the live stream with that id, or nil.
func (h *Hub) ByID(id uint64) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

// Streams lists the live streams, ordered by id.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, st := range h.streams {
		out = append(out, st)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Subscribe adds a reader to the stream at key. When the stream is not live,
// it waits up to wait (0: not at all) for a publisher, and returns
// ErrNotFound if none comes (or Refuse's error, if a source gives up
// first).
func (h *Hub) Subscribe(ctx context.Context, key Key, info ClientInfo, wait time.Duration) (*Reader, error) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	var w *waiter
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		st := h.streams[key]
		published := h.published
		h.mu.Unlock()
		if st != nil {
			if r := st.addReader(info); r != nil {
				return r, nil
			}
			// It ended between the lookup and the attach: look again.
			continue
		}
		if timeout == nil {
			return nil, fmt.Errorf("subscribe %s: %w", key, ErrNotFound)
		}
		if w == nil {
			w = h.addWaiter(key)
			defer h.removeWaiter(key, w)
			h.emit(Event{Type: EventDemand, Key: key})
		}
		select {
		case <-published:
		case <-w.refused:
			return nil, fmt.Errorf("subscribe %s: %w", key, w.err)
		case <-timeout:
			return nil, fmt.Errorf("subscribe %s: no publisher within %s: %w", key, wait, ErrNotFound)
		case <-ctx.Done():
			return nil, fmt.Errorf("subscribe %s: %w", key, ctx.Err())
		}
	}
}

// Close ends every stream; later Publish and Subscribe calls fail.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	streams := make([]*Stream, 0, len(h.streams))
	for _, st := range h.streams {
		streams = append(streams, st)
	}
	h.mu.Unlock()
	for _, st := range streams {
		st.end()
	}
}

// unregister removes st from the registry if it is still the live stream of
// its key.
func (h *Hub) unregister(st *Stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[st.key] != st {
		return false
	}
	delete(h.streams, st.key)
	delete(h.byID, st.id)
	return true
}

// Sample updates every stream's and reader's rates; call it about once a
// second (Run does).
func (h *Hub) Sample(now time.Time) {
	for _, st := range h.Streams() {
		st.sample(now)
	}
}

// Run samples rates every second until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Sample(now)
		}
	}
}
