// Package rtmp guards lal's RTMP server session against hostile peers.
//
// lal v0.37.4 (github.com/q191201771/lal/pkg/rtmp) has no limits: a connect
// command nested 2,500,000 AMF0 objects deep overflows the Go stack (a fatal
// error no recover() catches), a chunk header declaring a 16 MiB message makes
// it allocate 16 MiB before a byte of it arrives, every new chunk stream id
// costs 4 KiB, audio before publish and short user control messages panic,
// and nothing times out a peer that stalls in the handshake. lal has no hook
// between its socket and its parser, and no Go library offers a bounded,
// streaming RTMP chunk inspector, so the guard is hand-written: GuardConn
// sits between the socket and lal and passes bytes on only after a state
// machine that reads them exactly as lal will has accepted them.
package rtmp

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// ErrViolation is wrapped by every error the guard reports about the peer.
var ErrViolation = errors.New("rtmp guard")

// Limits bounds what one connection may make lal hold or parse. A zero field
// takes its default from DefaultLimits.
type Limits struct {
	// HandshakeTimeout is the read deadline set from accept until
	// Established is called.
	HandshakeTimeout time.Duration
	// MaxCommandSize caps command, data and control messages (types 1-6,
	// 15-20), and, before publish, the sum of all unfinished messages.
	MaxCommandSize int
	// MaxMediaSize caps audio, video and aggregate messages (8, 9, 22).
	MaxMediaSize int
	// MaxChunkStreams caps the distinct chunk stream ids of a connection.
	MaxChunkStreams int
	// MaxAMFDepth caps the nesting of AMF0 objects and arrays.
	MaxAMFDepth int
	// MaxChunkSize is the largest Set Chunk Size accepted (at most
	// 0x7fffffff; 0 is always rejected).
	MaxChunkSize int
}

// DefaultLimits returns limits that every encoder we know stays far within.
func DefaultLimits() Limits {
	return Limits{
		HandshakeTimeout: 10 * time.Second,
		MaxCommandSize:   64 << 10,
		MaxMediaSize:     8 << 20,
		MaxChunkStreams:  32,
		MaxAMFDepth:      32,
		MaxChunkSize:     16 << 20,
	}
}

const maxChunkSizeField = 0x7fffffff // the top bit of Set Chunk Size must be 0

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = d.HandshakeTimeout
	}
	if l.MaxCommandSize <= 0 {
		l.MaxCommandSize = d.MaxCommandSize
	}
	if l.MaxMediaSize <= 0 {
		l.MaxMediaSize = d.MaxMediaSize
	}
	if l.MaxChunkStreams <= 0 {
		l.MaxChunkStreams = d.MaxChunkStreams
	}
	if l.MaxAMFDepth <= 0 {
		l.MaxAMFDepth = d.MaxAMFDepth
	}
	if l.MaxChunkSize <= 0 {
		l.MaxChunkSize = d.MaxChunkSize
	}
	l.MaxChunkSize = min(l.MaxChunkSize, maxChunkSizeField)
	return l
}

// GuardConn is the net.Conn handed to lalrtmp.NewServerSession. Read returns
// bytes only after the inspector accepted all of them; once the peer broke a
// rule, Read fails with an error wrapping ErrViolation, and so does every
// later Read. Write, Close and the rest pass through unchanged.
//
// Read must be called from one goroutine at a time (lal's read loop);
// Violation and Established may be called from any goroutine.
type GuardConn struct {
	net.Conn
	in        inspector
	failed    error                 // owned by the reading goroutine
	violation atomic.Pointer[error] // failed, published to other goroutines
}

// NewGuardConn wraps c and sets its read deadline to now+HandshakeTimeout.
func NewGuardConn(c net.Conn, l Limits) *GuardConn {
	l = l.withDefaults()
	g := &GuardConn{Conn: c, in: newInspector(l)}
	// An error here means c is already closed; the first Read says so.
	_ = c.SetReadDeadline(time.Now().Add(l.HandshakeTimeout))
	return g
}

// Read reads from the connection and returns the bytes only once the
// inspector has accepted them all.
func (g *GuardConn) Read(p []byte) (int, error) {
	if g.failed != nil {
		return 0, g.failed
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		if verr := g.in.feed(p[:n]); verr != nil {
			return 0, g.fail(verr)
		}
	}
	return n, err
}

// fail records the violation. A function of its own: storing &verr inside
// Read made the compiler move verr to the heap, an allocation per Read.
func (g *GuardConn) fail(verr error) error {
	g.failed = verr
	g.violation.Store(&verr)
	return verr
}

// OnCommand makes fn see the body of every AMF0 command message (type 20)
// the peer sends, once the guard accepted it and before lal reads it, on
// the reading goroutine; fn must not keep the slice. Set it before the
// first Read.
func (g *GuardConn) OnCommand(fn func(body []byte)) {
	g.in.onAMF = func(typ uint8, body []byte) {
		if typ == 20 {
			fn(body)
		}
	}
}

// Violation returns the first rule the peer broke, or nil.
func (g *GuardConn) Violation() error {
	if p := g.violation.Load(); p != nil {
		return *p
	}
	return nil
}

// Established clears the handshake read deadline; call it once publish or
// play has been accepted (from lal's OnNewRtmpPubSession/OnNewRtmpSubSession,
// which run on the read goroutine). After publish lal sets its own read
// deadline before every read; after play it sets none.
func (g *GuardConn) Established() {
	_ = g.Conn.SetReadDeadline(time.Time{})
}
