package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// maxLag is how far behind live a slave may fall before it skips to the
// next keyframe (stream.Reader.SetMaxLag): a slave on a slow link gets a
// recent picture, not an ever older one, and the skipped packets count as
// drops.
const maxLag = 3 * time.Second

// errStreamEnded ends a handler: its stream was unpublished.
var errStreamEnded = errors.New("stream ended")

// handler pushes one stream to one destination, reconnecting with backoff
// until the stream ends or the handler is stopped.
type handler struct {
	hub  *stream.Hub
	st   *stream.Stream
	url  string // where the session dials; a group handler's changes with its member
	dest string // the destination with its secrets hidden: for logs and stats
	// target is url with its secrets hidden, for errors and the hub's
	// reader info; only the handler's goroutine uses url and target.
	target string
	// grp is set for a `group:NAME` destination (see runGroup).
	grp  *groupRoute
	opts Options
	log  *slog.Logger
	// noDelay is the vhost's tcp_nodelay when the handler started.
	noDelay bool
	gone    <-chan struct{} // closed when the stream is unpublished

	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	state      State
	since      time.Time
	lastError  string
	reconnects uint64
	dropped    uint64 // skipped for lag, and from readers already closed
	reader     *stream.Reader
	sink       *rtmpproto.Sink // the current session's
	written    uint64          // bytes of sessions already ended
	member     string          // a group destination's current member
	moves      uint64          // a group destination's moves between members
	kickFn     context.CancelCauseFunc
}

func newHandler(hub *stream.Hub, st *stream.Stream, url string, gone <-chan struct{}, opts Options, log *slog.Logger) *handler {
	dest := hooks.Redact(url)
	return &handler{
		hub: hub, st: st, url: url, dest: dest, target: dest, opts: opts, gone: gone,
		log:   log.With("destination", dest),
		done:  make(chan struct{}),
		state: StateConnecting, since: time.Now(),
	}
}

// stop asks the handler to flush and close; done closes when it has.
func (h *handler) stop() { h.cancel() }

func (h *handler) setState(s State, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s != h.state {
		h.state, h.since = s, time.Now()
	}
	if err != nil {
		h.lastError = err.Error()
	}
}

// Stats returns a snapshot.
func (h *handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{
		Stream: h.st.Key().String(), Destination: h.dest,
		State: h.state, LastError: h.lastError, Reconnects: h.reconnects,
		Bytes: h.written, Dropped: h.dropped, Since: h.since,
		Member: h.member, Moves: h.moves,
	}
	if h.sink != nil {
		s.Bytes += h.sink.Written()
	}
	if h.reader != nil {
		rs := h.reader.Stats()
		s.Dropped += rs.Dropped
		if h.state == StateForwarding {
			s.Bitrate = int64(rs.Out.Bitrate)
		}
	}
	return s
}

func (h *handler) setSink(s *rtmpproto.Sink) {
	h.mu.Lock()
	h.sink = s
	h.mu.Unlock()
}

// addWritten moves an ended session's bytes into the total.
func (h *handler) addWritten(n uint64) {
	h.mu.Lock()
	h.written += n
	h.sink = nil
	h.mu.Unlock()
}

func (h *handler) setReader(r *stream.Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reader != nil {
		h.dropped += h.reader.Stats().Dropped
		h.reader.Close()
	}
	h.reader = r
}

// run is the handler's goroutine. first, when not nil, is a reader
// subscribed inside the publish event, used by the first attempt.
func (h *handler) run(ctx context.Context, first *stream.Reader) {
	defer close(h.done)
	defer h.setReader(nil)
	if h.grp != nil {
		h.runGroup(ctx, first)
		return
	}
	b := h.opts.backoff()
	for {
		h.setState(StateConnecting, nil)
		good, err := h.session(ctx, first)
		first = nil
		if h.finished(ctx, err) {
			return
		}
		if good >= h.opts.GoodRun {
			b.Reset()
		}
		delay := b.Next()
		n := h.failed()
		h.setState(StateBackoff, err)
		h.log.Warn("forward failed", "err", err, "retry_in", delay.Round(time.Millisecond), "attempt", n)
		if !h.wait(ctx, delay, probeAfter(err)) {
			h.setState(StateStopped, nil)
			h.log.Info("forward stopped", "reason", stopReason(nil, ctx))
			return
		}
	}
}

// finished reports whether a session's end ends the handler (the stream
// ended, or the handler stops), and then records the stop.
func (h *handler) finished(ctx context.Context, err error) bool {
	if !errors.Is(err, errStreamEnded) && ctx.Err() == nil {
		return false
	}
	h.setState(StateStopped, nil)
	h.log.Info("forward stopped", "reason", stopReason(err, ctx))
	return true
}

// failed counts a failed session and returns the count.
func (h *handler) failed() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reconnects++
	return h.reconnects
}

func stopReason(err error, ctx context.Context) string {
	if ctx.Err() != nil {
		return "stopped"
	}
	if err != nil {
		return err.Error()
	}
	return "stream ended"
}

// wait sleeps delay; after a connection that was refused or unreachable it
// also probes the port every second and returns early when it opens, so a
// restarted slave is back within a second however long the backoff.
func (h *handler) wait(ctx context.Context, delay time.Duration, probe bool) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	var tick <-chan time.Time
	if probe {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-h.gone:
			return false
		case <-t.C:
			return true
		case <-tick:
			if h.reachable(ctx) {
				return true
			}
		}
	}
}

func (h *handler) reachable(ctx context.Context) bool {
	host := hostPort(h.url)
	if host == "" {
		return false
	}
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// probeAfter: after a refused or unreachable dial, or a timeout (a slave
// or a link too slow to take the stream: a bandwidth cap, a lossy path
// whose retransmission timer backed off), the wait before the next try
// probes the slave every second, so the forward resumes within about a
// second of the link coming back however far the backoff has grown. A
// slave that answers and refuses keeps the plain backoff.
func probeAfter(err error) bool {
	var ne net.Error
	return isDialError(err) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// session makes one connection and forwards until it fails, the stream
// ends (errStreamEnded) or ctx ends. It returns how long it forwarded.
func (h *handler) session(ctx context.Context, r *stream.Reader) (time.Duration, error) {
	if r != nil {
		h.setReader(r)
	}
	select {
	case <-h.gone:
		if r == nil {
			return 0, errStreamEnded
		}
	default:
	}
	sess, err := rtmpproto.DialPush(ctx, h.url, rtmpproto.PushOptions{
		ConnectTimeout: h.opts.ConnectTimeout,
		WriteTimeout:   h.opts.WriteTimeout,
		SendBuffer:     h.opts.SendBuffer,
		UnsentLimit:    h.opts.UnsentLimit,
		NoDelay:        h.noDelay,
	})
	if err != nil {
		h.setReader(nil)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("push to %s: %w", h.target, err)
	}
	if r == nil {
		r, err = h.hub.Subscribe(ctx, h.st.Key(), stream.ClientInfo{Protocol: "forward", Remote: h.target}, 0)
		if err != nil || r.Stream() != h.st {
			if r != nil {
				r.Close()
			}
			sess.Close(h.opts.CloseGrace)
			return 0, errStreamEnded
		}
		h.setReader(r)
	}
	h.setState(StateForwarding, nil)
	h.log.Info("forwarding")
	start := time.Now()
	err = h.pump(ctx, sess, r)
	return time.Since(start), err
}

// pump copies the reader to the session until either ends.
func (h *handler) pump(ctx context.Context, sess *rtmpproto.Push, r *stream.Reader) error {
	// A failed session (the slave closed, reset or broke a rule) ends the
	// wait for packets; a stop (ctx) ends it too, and a write stuck on a
	// slave that stopped reading is cut after CloseGrace.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	stopWatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(h.opts.CloseGrace)
		defer t.Stop()
		select {
		case <-sess.Done():
		case <-t.C:
			sess.Abort()
		}
	})
	defer stopWatch()
	go func() {
		select {
		case <-sess.Done():
			rcancel()
		case <-rctx.Done():
		}
	}()
	sink := sess.Sink()
	defer func() { h.addWritten(sink.Written()) }()
	h.setSink(sink)
	r.SetMaxLag(maxLag)
	sink.Attach(r)
	defer r.SetDirect(nil)
	var (
		batch []media.Packet
		err   error
	)
	for {
		batch, err = r.ReadBatch(rctx, batch[:0])
		m, ver := r.Metadata()
		werr := sink.WriteBatch(batch, m, ver)
		clear(batch)
		r.Done()
		if werr != nil {
			sess.Abort()
			if serr := sess.Err(); serr != nil {
				werr = serr
			}
			return fmt.Errorf("write to %s: %w", h.target, werr)
		}
		if err != nil {
			if serr := sess.Err(); serr != nil {
				return fmt.Errorf("push to %s: %w", h.target, serr)
			}
			sess.Close(h.opts.CloseGrace)
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			if errors.Is(err, stream.ErrReaderClosed) || ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}
