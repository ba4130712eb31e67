package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/podiumlive/podium/flv"
)

// Pull is a client session that plays one stream from an RTMP server (an
// edge's pull from an origin). Every byte the server sends passes the same
// bounded inspector that guards ingest (AMF nesting, declared message
// sizes, chunk streams), so a hostile or broken origin ends its session
// with an error and harms nothing else.
//
// Written here rather than taken from lal, whose PullSession dials by
// itself (no guarded connection can be put between the socket and its
// parser, which has no limits) and logs through a process-wide logger.
type Pull struct {
	conn *net.TCPConn
	s    *clientSession
	msid uint32
	url  string
	// early holds the messages that came with the play's answer, before
	// Run (nginx-rtmp sends the sequence headers at once).
	early      []Message
	earlyBytes int
	// Redirects are the 302s followed to reach the server.
	Redirects int
}

// PullOptions bound a pull session. Zero values take the defaults.
type PullOptions struct {
	// ConnectTimeout bounds dial, handshake, connect, createStream and
	// play together, for each hop of a redirect (default 5 s).
	ConnectTimeout time.Duration
	// MaxRedirects bounds the RTMP 302s followed (default 3): a redirect
	// loop ends in an error, not a hang.
	MaxRedirects int
	// Limits bound what the server may make the session parse.
	Limits Limits
}

// ErrRedirectLoop: the server redirected more than MaxRedirects times.
var ErrRedirectLoop = errors.New("too many redirects")

// Message is one media or data message of a pull. Payload is valid only
// during the callback.
type Message struct {
	Type      uint8  // TypeAudio, TypeVideo or TypeData
	Timestamp uint32 // milliseconds
	Payload   []byte
}

// DialPull connects to raw (rtmp://HOST[:PORT]/APP/STREAM[?query]) and
// plays: handshake, connect, createStream, play, and waits for
// NetStream.Play.Start. An RTMP 302 is followed to its target (the stream
// name kept) up to MaxRedirects times.
func DialPull(ctx context.Context, raw string, o PullOptions) (*Pull, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 3
	}
	for hop := 0; ; hop++ {
		p, err := dialPull(ctx, raw, o)
		var re *RedirectError
		if !errors.As(err, &re) {
			if p != nil {
				p.Redirects = hop
			}
			return p, err
		}
		if hop >= o.MaxRedirects {
			return nil, fmt.Errorf("%w (%d, last to %s)", ErrRedirectLoop, hop+1, redactURL(re.URL))
		}
		next, err := redirectTarget(raw, re.URL)
		if err != nil {
			return nil, err
		}
		raw = next
	}
}

// redirectTarget is the stream of raw on the server a 302 named: the
// redirect is a tcUrl (rtmp://HOST[:PORT]/APP) or a full stream URL.
func redirectTarget(raw, to string) (string, error) {
	cur, err := parsePushURL(raw)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(to)
	if err != nil || u.Scheme != "rtmp" || u.Hostname() == "" {
		return "", fmt.Errorf("redirected to %q: not an rtmp:// URL", redactURL(to))
	}
	if _, err := parsePushURL(to); err == nil && u.Path != "/"+cur.app {
		return to, nil // a stream URL
	}
	return "rtmp://" + u.Host + "/" + cur.app + "/" + cur.stream, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.RawQuery = ""
	return u.Redacted()
}

func dialPull(ctx context.Context, raw string, o PullOptions) (*Pull, error) {
	t, err := parsePushURL(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.hostPort)
	if err != nil {
		return nil, err
	}
	p := &Pull{conn: nc.(*net.TCPConn), url: raw}
	if err := openWithin(ctx, p.conn, o.ConnectTimeout, func() error { return p.open(t, o.Limits) }); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pull) open(t pushTarget, lim Limits) error {
	if err := clientHandshake(p.conn); err != nil {
		return err
	}
	p.s = newClientSession(p.conn, lim, func(b []byte) error {
		_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := p.conn.Write(b)
		return err
	})
	p.s.in.published = true // media may come once play is sent
	p.s.in.onMedia = func(typ uint8, ts uint32, body []byte) error {
		return p.keep(Message{Type: typ, Timestamp: ts, Payload: body})
	}
	onAMF := p.s.in.onAMF
	p.s.in.onAMF = func(typ uint8, body []byte) {
		if typ == TypeData {
			_ = p.keep(Message{Type: typ, Payload: body})
			return
		}
		onAMF(typ, body)
	}
	if err := p.s.connect(t.app, t.tcURL); err != nil {
		return err
	}
	buf := appendCommand(nil, 0, flv.CommandBody("createStream", 2, nil))
	if _, err := p.conn.Write(buf); err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	res, err := p.s.await(2, "createStream")
	if err != nil {
		return err
	}
	id, _ := argAt(res.Args, 1).(float64)
	if id < 1 || id > 1<<20 {
		return fmt.Errorf("createStream: server gave stream %v", res.Args)
	}
	p.msid = uint32(id)
	buf = appendCommand(buf[:0], p.msid, flv.CommandBody("play", 0, nil, t.stream, float64(-2000)))
	// Set Buffer Length (user control 3), as ffmpeg and flash send it.
	ctl := []byte{0, 3, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8}
	for i := range 4 {
		ctl[2+i] = byte(p.msid >> (24 - 8*i))
	}
	buf = AppendMessage(buf, 2, typeUserControl, 0, ChunkSize, nil, ctl)
	if _, err := p.conn.Write(buf); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	_, err = p.s.await(0, "play")
	return err
}

// keep holds a message that came before Run, within the limits of one
// media message.
func (p *Pull) keep(m Message) error {
	if len(p.early) >= 256 || p.earlyBytes+len(m.Payload) > p.s.in.lim.MaxMediaSize {
		return violation("%d bytes of media before the play started", p.earlyBytes+len(m.Payload))
	}
	m.Payload = append([]byte(nil), m.Payload...)
	p.early = append(p.early, m)
	p.earlyBytes += len(m.Payload)
	return nil
}

func argAt(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// ErrPlayEnded: the server said the stream stopped (unpublish, stop);
// ErrIdle: it sent no media for the idle time Run was given.
var (
	ErrPlayEnded = errors.New("stream ended at the server")
	ErrIdle      = errors.New("no media")
)

// Run reads until the server closes, breaks a rule, ends the play, sends
// nothing for idle, or ctx ends; it hands every audio, video and data
// message to fn in order. An error from fn ends Run with it.
func (p *Pull) Run(ctx context.Context, idle time.Duration, fn func(Message) error) error {
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for _, m := range p.early {
		if err := fn(m); err != nil {
			return err
		}
	}
	p.early = nil
	var fnErr error
	lastMedia := time.Now()
	p.s.in.onMedia = func(typ uint8, ts uint32, body []byte) error {
		lastMedia = time.Now()
		if err := fn(Message{Type: typ, Timestamp: ts, Payload: body}); err != nil {
			fnErr = err
			return err
		}
		return nil
	}
	onAMF := p.s.onAMF
	p.s.in.onAMF = func(typ uint8, body []byte) {
		if typ == TypeData && fnErr == nil {
			if err := fn(Message{Type: typ, Payload: body}); err != nil {
				fnErr = err
			}
			return
		}
		onAMF(typ, body)
	}
	buf := make([]byte, 32<<10)
	for {
		if idle > 0 {
			_ = p.conn.SetReadDeadline(lastMedia.Add(idle))
		}
		// Checked after the deadline is set: a cancel that set its own
		// (past) deadline just before is not lost.
		if err := ctx.Err(); err != nil {
			return err
		}
		// A status that came with the play's answer (a "not found" right
		// after NetStream.Play.Start) ends the play before any read.
		if err := p.ended(); err != nil {
			return err
		}
		n, err := p.conn.Read(buf)
		if n > 0 {
			if ferr := p.s.feed(buf[:n]); ferr != nil {
				if fnErr != nil {
					return fnErr
				}
				return fmt.Errorf("origin: %w", ferr)
			}
			if fnErr != nil {
				return fnErr
			}
			if err := p.ended(); err != nil {
				return err
			}
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, io.EOF):
				return errors.New("origin closed the connection")
			case errors.Is(err, ErrViolation):
				return fmt.Errorf("origin: %w", err)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("%w for %s", ErrIdle, idle)
			}
			return err
		}
	}
}

// Close ends the session at once with a reset.
func (p *Pull) Close() {
	_ = p.conn.SetLinger(0)
	_ = p.conn.Close()
}

// ended reads the server's statuses received so far: an error, or the end
// of the play, ends Run.
func (p *Pull) ended() error {
	defer func() { p.s.replies = p.s.replies[:0] }()
	for i := range p.s.replies {
		c := &p.s.replies[i]
		if c.Name != "onStatus" {
			continue
		}
		code, level, desc := status(c)
		switch {
		case level == "error":
			return fmt.Errorf("%w: %s %s", ErrRejected, code, desc)
		case code == "NetStream.Play.UnpublishNotify", code == "NetStream.Play.Stop",
			code == "NetStream.Play.Complete":
			return fmt.Errorf("%w (%s)", ErrPlayEnded, code)
		}
	}
	return nil
}
