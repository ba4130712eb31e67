package ui

import (
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// maxWatchers bounds the live-update connections (each holds a goroutine
// and a socket for as long as a dashboard is open).
const maxWatchers = 64

// sseWriteTimeout drops a dashboard that stops reading.
const sseWriteTimeout = 10 * time.Second

// broadcaster builds one snapshot per tick, only while someone watches,
// and hands the same bytes to every watcher. A watcher that is behind
// gets the newest snapshot, never a backlog.
type broadcaster struct {
	build func() []byte
	wake  chan struct{}

	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	closed bool
}

func newBroadcaster(build func() []byte) *broadcaster {
	return &broadcaster{build: build, wake: make(chan struct{}, 1), subs: make(map[chan []byte]struct{})}
}

// poke asks for an update before the next tick (a publish, a kick).
// It never blocks: the hub calls it on the publisher's goroutine.
func (b *broadcaster) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *broadcaster) poked() <-chan struct{} { return b.wake }

// subscribe returns a channel of snapshots, or nil when full or closed.
func (b *broadcaster) subscribe() chan []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.subs) >= maxWatchers {
		return nil
	}
	ch := make(chan []byte, 1)
	b.subs[ch] = struct{}{}
	return ch
}

func (b *broadcaster) unsubscribe(ch chan []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

func (b *broadcaster) watchers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// publish builds a snapshot and offers it to every watcher.
func (b *broadcaster) publish() {
	if b.watchers() == 0 {
		return
	}
	msg := b.build()
	if msg == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case <-ch: // drop the one it has not taken yet
		default:
		}
		ch <- msg
	}
}

// close ends every watcher (at shutdown) and refuses new ones.
func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// events streams snapshots as Server-Sent Events: one at once, then one
// per tick and one after every publish or unpublish.
func (u *UI) live(c *gin.Context) {
	ch := u.events.subscribe()
	if ch == nil {
		apiError(c, http.StatusServiceUnavailable, codeBusy, "too many open dashboards")
		return
	}
	defer u.events.unsubscribe(ch)
	first := u.snapshotJSON()
	w := c.Writer
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(msg []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write([]byte("event: snapshot\ndata: ")); err != nil {
			return false
		}
		if _, err := w.Write(msg); err != nil {
			return false
		}
		if _, err := w.Write([]byte("\n\n")); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	if first != nil && !send(first) {
		return
	}
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return // shutting down
			}
			if !send(msg) {
				return
			}
		}
	}
}
