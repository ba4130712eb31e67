package rtmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

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
	// NoDelay sets TCP_NODELAY: each write is sent at once instead of
	// being coalesced with the next while the slave has not acknowledged
	// the last (Nagle).
	NoDelay bool
	// Limits bound what the server may make the session parse.
	Limits Limits
}

// ErrPushRejected wraps a server's refusal of connect or publish.
var ErrPushRejected = errors.New("publish rejected")

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
	d := net.Dialer{}
	if o.SendBuffer > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, o.SendBuffer)
			}); err != nil {
				return err
			}
			return serr
		}
	}
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
	deadline, _ := ctx.Deadline()
	_ = p.conn.SetDeadline(deadline)
	// A cancelled ctx interrupts the blocking reads and writes below.
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Unix(1, 0)) })
	err = p.open(t, o.Limits)
	stop()
	if err != nil {
		p.Abort()
		if ctx.Err() != nil && !errors.Is(err, ErrPushRejected) {
			err = fmt.Errorf("%w (no answer within %v)", err, o.ConnectTimeout)
		}
		return nil, err
	}
	_ = p.conn.SetDeadline(time.Time{})
	return p, nil
}

// session is the reading side: the inspector and what it has seen.
type session struct {
	in      inspector
	window  uint32 // server's window acknowledgement size
	unacked uint32
	total   uint32
	replies []flv.Command // command answers not yet taken, in order
	err     error
}

func (p *Push) open(t pushTarget, lim Limits) error {
	// Simple handshake: C0 C1, then C2 echoes S1.
	c0c1 := make([]byte, 1+handshakeLen)
	c0c1[0] = handshakeVersion
	_, _ = rand.Read(c0c1[9:])
	if _, err := p.conn.Write(c0c1); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	s0s1 := make([]byte, 1+handshakeLen)
	if _, err := io.ReadFull(p.conn, s0s1); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if s0s1[0] != handshakeVersion {
		return fmt.Errorf("handshake: server version %d, want %d", s0s1[0], handshakeVersion)
	}
	if _, err := p.conn.Write(s0s1[1:]); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if _, err := io.ReadFull(p.conn, make([]byte, handshakeLen)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}

	s := &session{in: newInspector(lim.withDefaults())}
	s.in.st = stBasic
	s.in.onControl = func(typ uint8, head []byte) { s.control(p, typ, head) }
	s.in.onAMF = func(typ uint8, body []byte) {
		if typ != 20 {
			return
		}
		c, err := flv.ParseCommand(body)
		if err != nil {
			s.err = fmt.Errorf("server command: %w", err)
			return
		}
		if len(s.replies) < 64 {
			s.replies = append(s.replies, c)
		}
	}

	var buf []byte
	buf = AppendMessage(buf, 2, 1, 0, ChunkSize, nil, binary.BigEndian.AppendUint32(nil, ChunkSize))
	buf = appendCommand(buf, 0, flv.CommandBody("connect", 1, map[string]any{
		"app": t.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; Podium)", "tcUrl": t.tcURL,
	}))
	if err := p.writeAll(buf); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := p.await(s, 1, "connect"); err != nil {
		return err
	}
	name := t.stream
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	buf = appendCommand(buf[:0], 0, flv.CommandBody("releaseStream", 2, nil, name))
	buf = appendCommand(buf, 0, flv.CommandBody("FCPublish", 3, nil, name))
	buf = appendCommand(buf, 0, flv.CommandBody("createStream", 4, nil))
	if err := p.writeAll(buf); err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	res, err := p.await(s, 4, "createStream")
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
	if _, err := p.await(s, 0, "publish"); err != nil {
		return err
	}
	p.sink = NewSink(p.conn, p.writeTimeout, true)
	go p.readLoop(s)
	return nil
}

// appendCommand appends an AMF0 command message on chunk stream 3.
func appendCommand(dst []byte, msid uint32, body []byte) []byte {
	start := len(dst)
	dst = AppendMessage(dst, 3, 20, 0, ChunkSize, nil, body)
	binary.LittleEndian.PutUint32(dst[start+8:], msid) // AppendMessage writes StreamID
	return dst
}

// control answers pings and acknowledges what the server sent, as its
// window asks.
func (s *session) control(p *Push, typ uint8, head []byte) {
	switch typ {
	case 5:
		if len(head) >= 4 {
			s.window = binary.BigEndian.Uint32(head)
		}
	case typeUserControl:
		if len(head) >= 6 && binary.BigEndian.Uint16(head) == userControlPing {
			pong := []byte{0, 7, head[2], head[3], head[4], head[5]}
			_ = p.control(AppendMessage(nil, 2, typeUserControl, 0, ChunkSize, nil, pong))
		}
	}
}

// feed passes n read bytes to the inspector and acknowledges them when due.
func (s *session) feed(p *Push, b []byte) error {
	if err := s.in.feed(b); err != nil {
		return err
	}
	s.total += uint32(len(b))
	s.unacked += uint32(len(b))
	if s.window > 0 && s.unacked >= s.window/2 {
		s.unacked = 0
		return p.control(AppendMessage(nil, 2, 3, 0, ChunkSize, nil, binary.BigEndian.AppendUint32(nil, s.total)))
	}
	return s.err
}

// await reads until the answer to transaction tx (0: the publish onStatus).
func (p *Push) await(s *session, tx float64, what string) (flv.Command, error) {
	buf := make([]byte, 4096)
	for {
		if len(s.replies) > 0 {
			c := &s.replies[0]
			s.replies = s.replies[1:]
			switch {
			case c.Name == "onStatus":
				code, level, desc := status(c)
				if level == "error" || strings.HasSuffix(code, "Failed") || strings.HasSuffix(code, "BadName") {
					return *c, fmt.Errorf("%s: %w: %s %s", what, ErrPushRejected, code, desc)
				}
				if tx == 0 && code == "NetStream.Publish.Start" {
					return *c, nil
				}
			case c.TxID == tx && c.Name == "_result":
				return *c, nil
			case c.TxID == tx && c.Name == "_error":
				code, _, desc := status(c)
				return *c, fmt.Errorf("%s: %w: %s %s", what, ErrPushRejected, code, desc)
			}
			continue
		}
		n, err := p.conn.Read(buf)
		if n > 0 {
			if ferr := s.feed(p, buf[:n]); ferr != nil {
				return flv.Command{}, fmt.Errorf("%s: %w", what, ferr)
			}
		}
		if err != nil && len(s.replies) == 0 {
			return flv.Command{}, fmt.Errorf("%s: %w", what, err)
		}
	}
}

// status reads an onStatus or _error info object.
func status(c *flv.Command) (code, level, desc string) {
	for _, a := range c.Args {
		if m, ok := a.(map[string]any); ok {
			code, _ = m["code"].(string)
			level, _ = m["level"].(string)
			desc, _ = m["description"].(string)
			if code != "" {
				return
			}
		}
	}
	return
}

// readLoop reads until the server closes or breaks a rule; a late error
// status ends the session too.
func (p *Push) readLoop(s *session) {
	buf := make([]byte, 4096)
	for {
		n, err := p.conn.Read(buf)
		if n > 0 {
			if ferr := s.feed(p, buf[:n]); ferr != nil {
				p.fail(fmt.Errorf("server: %w", ferr))
				return
			}
			for i := range s.replies {
				c := &s.replies[i]
				if code, level, desc := status(c); c.Name == "onStatus" && level == "error" {
					p.fail(fmt.Errorf("server: %w: %s %s", ErrPushRejected, code, desc))
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
