package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podiumlive/podium/flv"
)

// Push is a client session that publishes one stream to an RTMP server
// (a forward to a slave). After DialPush it carries the media messages the
// caller writes; a goroutine reads what the server sends (acknowledgements,
// pings, a late onStatus error) through the same bounded inspector that
// guards ingest.
//
// It is written here rather than taken from lal (whose PushSession forward
// used first) because lal's client dials without a timeout or socket
// options, cannot abort a failed session with a reset (a graceful close
// makes the slave drain the stale kernel backlog, holding the stream name
// for minutes on a slow link), and panics on a message type it does not
// know, which a hostile slave could send to crash the master.
type Push struct {
	conn         *net.TCPConn
	writeTimeout time.Duration

	sink *Sink // set once publishing; all writes go through it

	done chan struct{}
	mu   sync.Mutex
	err  error
}

// PushOptions bound a push session. Zero values take the defaults.
type PushOptions struct {
	// ConnectTimeout bounds dial, handshake, connect, createStream and
	// publish together (default 5 s).
	ConnectTimeout time.Duration
	// WriteTimeout is the longest a write may make no progress (default 5 s).
	WriteTimeout time.Duration
	// SendBuffer, when > 0, sets SO_SNDBUF: it bounds how much stale media
	// the kernel queues for a slow slave, so the caller's queue sees the
	// slowness and drops whole GOPs.
	SendBuffer int
	// UnsentLimit, when > 0, sets TCP_NOTSENT_LOWAT: the kernel takes no
	// more from a write while this many bytes wait unsent, so behind a
	// link slower than the stream the backlog stays in the caller's queue
	// (dropped by whole GOPs) instead of aging in the send buffer, which
	// the link, once back, must first drain: up to SO_SNDBUF of stale
	// media, seconds at the pace TCP's congestion control learned while
	// the link was slow.
	UnsentLimit int
	// NoDelay sets TCP_NODELAY: each write is sent at once instead of
	// being coalesced with the next while the slave has not acknowledged
	// the last (Nagle).
	NoDelay bool
	// Limits bound what the server may make the session parse.
	Limits Limits
}

// ErrRejected wraps a server's refusal of connect, publish or play.
var ErrRejected = errors.New("rejected by the server")

// pushTarget is an rtmp:// URL split the way servers read it: the app is
// the path up to the last segment, the stream the last segment with the
// query (which carries ?vhost= and other parameters).
type pushTarget struct {
	hostPort, app, stream, tcURL string
}

func parsePushURL(raw string) (pushTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return pushTarget{}, fmt.Errorf("push url: %w", err)
	}
	if u.Scheme != "rtmp" || u.Hostname() == "" {
		return pushTarget{}, fmt.Errorf("push url %q: want rtmp://HOST[:PORT]/APP/STREAM", u.Redacted())
	}
	path := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return pushTarget{}, fmt.Errorf("push url %q: want rtmp://HOST[:PORT]/APP/STREAM", u.Redacted())
	}
	t := pushTarget{hostPort: u.Host, app: path[:i], stream: path[i+1:]}
	if u.Port() == "" {
		t.hostPort = net.JoinHostPort(u.Hostname(), "1935")
	}
	if u.RawQuery != "" {
		t.stream += "?" + u.RawQuery
	}
	t.tcURL = "rtmp://" + u.Host + "/" + t.app
	return t, nil
}

// tcpRTOMaxMS is Linux's TCP_RTO_MAX_MS (6.15), which x/sys/unix does not
// name yet: the most a socket's retransmission timeout may back off to.
const tcpRTOMaxMS = 44

// DialPush connects to raw (rtmp://HOST[:PORT]/APP/STREAM[?query]) and
// publishes: handshake, connect, releaseStream, FCPublish, createStream,
// publish "live", and waits for NetStream.Publish.Start. A dial error is
// returned as the *net.OpError it is, so callers can tell an absent slave.
func DialPush(ctx context.Context, raw string, o PushOptions) (*Push, error) {
	t, err := parsePushURL(raw)
	if err != nil {
		return nil, err
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			// The retransmission timer of a push backs off while a link
			// drops its packets (a partition, a bandwidth cap); capped at
			// 1 s (the least the kernel takes), a connection that outlived
			// the outage retransmits within a second of the link coming
			// back. Kernels before 6.15 lack the option: their backoff
			// then applies.
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpRTOMaxMS, 1000)
			if o.UnsentLimit > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, o.UnsentLimit)
			}
			if o.SendBuffer > 0 && serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, o.SendBuffer)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.DialContext(ctx, "tcp", t.hostPort)
	if err != nil {
		return nil, err
	}
	// Go turns Nagle off on every TCP connection; RTMP servers (SRS's
	// default tcp_nodelay off, nginx-rtmp) leave it on for pushes, and so
	// do we unless asked: on loopback it cut the slave's wake-ups per
	// message ~4x and the master's CPU per push ~25% (bench/forward).
	_ = nc.(*net.TCPConn).SetNoDelay(o.NoDelay)
	p := &Push{conn: nc.(*net.TCPConn), writeTimeout: o.WriteTimeout, done: make(chan struct{})}
	if err := openWithin(ctx, p.conn, o.ConnectTimeout, func() error { return p.open(t, o.Limits) }); err != nil {
		p.Abort()
		return nil, err
	}
	return p, nil
}

func (p *Push) open(t pushTarget, lim Limits) error {
	if err := clientHandshake(p.conn); err != nil {
		return err
	}
	s := newClientSession(p.conn, lim, p.control)
	if err := s.connect(t.app, t.tcURL); err != nil {
		return err
	}
	name := t.stream
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	buf := appendCommand(nil, 0, flv.CommandBody("releaseStream", 2, nil, name))
	buf = appendCommand(buf, 0, flv.CommandBody("FCPublish", 3, nil, name))
	buf = appendCommand(buf, 0, flv.CommandBody("createStream", 4, nil))
	if err := p.writeAll(buf); err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	res, err := s.await(4, "createStream")
	if err != nil {
		return err
	}
	if len(res.Args) < 2 || res.Args[1] != float64(StreamID) {
		// Podium writes media on stream 1, which every server we know
		// (SRS, nginx-rtmp, lal, MediaMTX, Wowza) answers.
		return fmt.Errorf("createStream: server gave stream %v, only %d is supported", res.Args, StreamID)
	}
	buf = appendCommand(buf[:0], StreamID, flv.CommandBody("publish", 5, nil, t.stream, "live"))
	if err := p.writeAll(buf); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := s.await(0, "publish"); err != nil {
		return err
	}
	p.sink = NewSink(p.conn, p.writeTimeout, true)
	go p.readLoop(s)
	return nil
}

// readLoop reads until the server closes or breaks a rule; a late error
// status ends the session too.
func (p *Push) readLoop(s *clientSession) {
	buf := make([]byte, 4096)
	for {
		n, err := p.conn.Read(buf)
		if n > 0 {
			if ferr := s.feed(buf[:n]); ferr != nil {
				p.fail(fmt.Errorf("server: %w", ferr))
				return
			}
			for i := range s.replies {
				c := &s.replies[i]
				if code, level, desc := status(c); c.Name == "onStatus" && level == "error" {
					p.fail(fmt.Errorf("server: %w: %s %s", ErrRejected, code, desc))
					return
				}
			}
			s.replies = s.replies[:0]
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the connection")
			}
			p.fail(err)
			return
		}
	}
}

// fail records the session's first error and closes it with a reset.
func (p *Push) fail(err error) {
	p.mu.Lock()
	first := p.err == nil
	if first {
		p.err = err
	}
	p.mu.Unlock()
	if first {
		close(p.done)
		p.Abort()
	}
}

// Done is closed when the session has failed; Err says why.
func (p *Push) Done() <-chan struct{} { return p.done }

// Err is the reason the session failed, or nil.
func (p *Push) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Sink is where the caller writes media (directly from the publisher's
// goroutine while the slave keeps up, see Sink).
func (p *Push) Sink() *Sink { return p.sink }

func (p *Push) writeAll(b []byte) error {
	_, err := p.conn.Write(b)
	return err
}

// control writes a control message: before publishing on the session's
// own goroutine, after through the sink, in order with the media.
func (p *Push) control(b []byte) error {
	if p.sink == nil {
		_ = p.conn.SetWriteDeadline(time.Now().Add(p.writeTimeout))
		_, err := p.conn.Write(b)
		return err
	}
	_, err := p.sink.Control(b)
	return err
}

// Close ends the session gracefully: everything written reaches the
// server, then a FIN; it waits up to grace for the server to close its
// side (a reset would lose the server's last packets).
func (p *Push) Close(grace time.Duration) {
	p.sink.Close(func() { _ = p.conn.CloseWrite() })
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	_ = p.conn.Close()
}

// Abort ends the session at once with a reset: the kernel drops what it
// still queues, and the server learns at once that the publisher is gone.
func (p *Push) Abort() {
	_ = p.conn.SetLinger(0)
	_ = p.conn.Close()
}
