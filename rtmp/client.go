package rtmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/podiumlive/podium/flv"
)

// The client side shared by Push and Pull: the handshake, connect, and a
// reading session whose every byte passes the same bounded inspector that
// guards ingest (the server at the other end is not trusted either).

// openWithin runs open (handshake and commands) on conn within ctx's
// deadline: a cancelled ctx interrupts its blocking reads and writes. An
// error that is the server's answer (a refusal, a redirect) is returned
// as is; any other one after the deadline says it was one.
func openWithin(ctx context.Context, conn net.Conn, timeout time.Duration, open func() error) error {
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err := open()
	stop()
	if err != nil {
		var re *RedirectError
		// The conn's deadline can fire a moment before ctx's timer does:
		// a deadline error is the timeout too.
		timedOut := ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)
		if timedOut && !errors.Is(err, ErrRejected) && !errors.As(err, &re) {
			err = fmt.Errorf("%w (no answer within %v)", err, timeout)
		}
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	return nil
}

// clientHandshake does the simple handshake: C0 C1, then C2 echoes S1.
func clientHandshake(conn net.Conn) error {
	c0c1 := make([]byte, 1+handshakeLen)
	c0c1[0] = handshakeVersion
	_, _ = rand.Read(c0c1[9:])
	if _, err := conn.Write(c0c1); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	s0s1 := make([]byte, 1+handshakeLen)
	if _, err := io.ReadFull(conn, s0s1); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if s0s1[0] != handshakeVersion {
		return fmt.Errorf("handshake: server version %d, want %d", s0s1[0], handshakeVersion)
	}
	if _, err := conn.Write(s0s1[1:]); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if _, err := io.ReadFull(conn, make([]byte, handshakeLen)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return nil
}

// clientSession is the reading side of a client: the inspector and what
// it has seen.
type clientSession struct {
	conn    net.Conn
	write   func([]byte) error // control messages (acknowledgements, pongs)
	in      inspector
	window  uint32 // server's window acknowledgement size
	unacked uint32
	total   uint32
	replies []flv.Command // command answers not yet taken, in order
	err     error
}

// onAMF collects the command answers.
func (s *clientSession) onAMF(typ uint8, body []byte) {
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

func newClientSession(conn net.Conn, lim Limits, write func([]byte) error) *clientSession {
	s := &clientSession{conn: conn, write: write, in: newInspector(lim.withDefaults())}
	s.in.st = stBasic
	s.in.onControl = s.control
	s.in.onAMF = s.onAMF
	return s
}

// connect sends Set Chunk Size and connect, and waits for its _result.
func (s *clientSession) connect(app, tcURL string) error {
	var buf []byte
	buf = AppendMessage(buf, 2, 1, 0, ChunkSize, nil, binary.BigEndian.AppendUint32(nil, ChunkSize))
	buf = appendCommand(buf, 0, flv.CommandBody("connect", 1, map[string]any{
		"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; Podium)", "tcUrl": tcURL,
	}))
	if _, err := s.conn.Write(buf); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	_, err := s.await(1, "connect")
	return err
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
func (s *clientSession) control(typ uint8, head []byte) {
	switch typ {
	case 5:
		if len(head) >= 4 {
			s.window = binary.BigEndian.Uint32(head)
		}
	case typeUserControl:
		if len(head) >= 6 && binary.BigEndian.Uint16(head) == userControlPing {
			pong := []byte{0, 7, head[2], head[3], head[4], head[5]}
			_ = s.write(AppendMessage(nil, 2, typeUserControl, 0, ChunkSize, nil, pong))
		}
	}
}

// feed passes read bytes to the inspector and acknowledges them when due.
func (s *clientSession) feed(b []byte) error {
	if err := s.in.feed(b); err != nil {
		return err
	}
	s.total += uint32(len(b))
	s.unacked += uint32(len(b))
	if s.window > 0 && s.unacked >= s.window/2 {
		s.unacked = 0
		return s.write(AppendMessage(nil, 2, 3, 0, ChunkSize, nil, binary.BigEndian.AppendUint32(nil, s.total)))
	}
	return s.err
}

// await reads until the answer to transaction tx; tx 0 waits for the
// onStatus that starts a publish (NetStream.Publish.Start) or a play
// (NetStream.Play.Start).
func (s *clientSession) await(tx float64, what string) (flv.Command, error) {
	buf := make([]byte, 4096)
	for {
		if len(s.replies) > 0 {
			c := &s.replies[0]
			s.replies = s.replies[1:]
			switch {
			case c.Name == "onStatus":
				if to := redirect(c); to != "" {
					return *c, &RedirectError{URL: to} // SRS answers a play with it
				}
				code, level, desc := status(c)
				if level == "error" || strings.HasSuffix(code, "Failed") || strings.HasSuffix(code, "BadName") ||
					strings.HasSuffix(code, "NotFound") {
					return *c, fmt.Errorf("%s: %w: %s %s", what, ErrRejected, code, desc)
				}
				if tx == 0 && (code == "NetStream.Publish.Start" || code == "NetStream.Play.Start") {
					return *c, nil
				}
			case c.TxID == tx && c.Name == "_result":
				return *c, nil
			case c.TxID == tx && c.Name == "_error":
				if to := redirect(c); to != "" {
					return *c, &RedirectError{URL: to}
				}
				code, _, desc := status(c)
				return *c, fmt.Errorf("%s: %w: %s %s", what, ErrRejected, code, desc)
			}
			continue
		}
		n, err := s.conn.Read(buf)
		if n > 0 {
			if ferr := s.feed(buf[:n]); ferr != nil {
				return flv.Command{}, fmt.Errorf("%s: %w", what, ferr)
			}
		}
		if err != nil && len(s.replies) == 0 {
			return flv.Command{}, fmt.Errorf("%s: %w", what, err)
		}
	}
}

// RedirectError is a server's RTMP 302 (SRS's shape: an _error, or an
// onStatus answering a play, whose info has ex.code 302 and ex.redirect,
// the tcUrl or stream URL to connect to instead).
type RedirectError struct{ URL string }

func (e *RedirectError) Error() string { return "redirected to " + e.URL }

// redirect returns the target of an RTMP 302, or "".
func redirect(c *flv.Command) string {
	for _, a := range c.Args {
		m, ok := a.(map[string]any)
		if !ok {
			continue
		}
		ex, _ := m["ex"].(map[string]any)
		if code, _ := ex["code"].(float64); code != 302 {
			continue
		}
		if u, _ := ex["redirect"].(string); u != "" {
			return u
		}
	}
	return ""
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
