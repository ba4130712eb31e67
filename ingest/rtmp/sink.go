package rtmp

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// gateConn is the net.Conn lal gets: the guard for reads, and for writes
// the play sink once the session plays (so lal's control messages queue
// behind a half-written media message instead of cutting into it). It also
// coarsens the read deadline lal resets before every read: moving a timer
// per read costs more than the read on a busy relay, and a 10 s timeout
// does not need millisecond precision.
type gateConn struct {
	*rtmpproto.GuardConn
	sink     atomic.Pointer[rtmpproto.Sink]
	deadline time.Time // last read deadline set; only lal's read goroutine touches it
}

func (g *gateConn) Write(b []byte) (int, error) {
	if s := g.sink.Load(); s != nil {
		return s.Control(b)
	}
	return g.GuardConn.Write(b)
}

// SetWriteDeadline: once the session plays, the sink owns write deadlines
// (lal's would linger and fail the direct writes); before, lal's apply.
func (g *gateConn) SetWriteDeadline(t time.Time) error {
	if g.sink.Load() != nil {
		return nil
	}
	return g.GuardConn.SetWriteDeadline(t)
}

func (g *gateConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !g.deadline.IsZero() && t.After(g.deadline) && t.Sub(g.deadline) < time.Second {
		return nil
	}
	g.deadline = t
	return g.GuardConn.SetReadDeadline(t)
}

// bufConn reads the socket through a buffer of up to 64 KiB, with
// rtmpproto.RawRead. lal reads through a 4 KiB one, so a 10 KiB video frame
// that arrived in one burst would take three read(2) calls; here it takes
// one, and lal's reads are served from memory. The guard inspects bytes as
// lal takes them, after this buffer. The buffer starts at 4 KiB and
// doubles each time a read fills it: a publisher's grows to 64 KiB within
// its first frames, a player's (which sends a few bytes a second) stays
// small — 64 KiB per player was a sixth of an edge's memory per viewer.
type bufConn struct {
	net.Conn
	rc   syscall.RawConn
	buf  []byte
	r, w int
	grow bool // the last read filled buf
	// The read callback and its results, made once (a closure per read
	// would be heap allocations per read).
	readFn func(fd uintptr) bool
	rn     int
	rerr   error
}

// bufConn's buffer sizes.
const (
	minReadBuf = 4 << 10
	maxReadBuf = 64 << 10
)

func newBufConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	b := &bufConn{Conn: c, rc: rc, buf: make([]byte, minReadBuf)}
	// Returning false on EAGAIN parks the goroutine in the netpoller until
	// the socket is readable (or the read deadline passes).
	b.readFn = func(fd uintptr) bool {
		b.rn, b.rerr = rtmpproto.RawRead(fd, b.buf)
		return b.rerr != syscall.EAGAIN // the bare Errno: no errors.Is needed (or paid for) per read
	}
	return b
}

func (b *bufConn) Read(p []byte) (int, error) {
	if b.r == b.w {
		if b.grow {
			b.buf, b.grow = make([]byte, 2*len(b.buf)), false
		}
		if err := b.rc.Read(b.readFn); err != nil {
			return 0, err
		}
		n, rerr := b.rn, b.rerr
		if rerr != nil {
			return 0, rerr
		}
		if n == 0 {
			return 0, io.EOF
		}
		b.r, b.w = 0, n
		// A full read: more was waiting. The next read gets a bigger
		// buffer (this one is still being served).
		b.grow = n == len(b.buf) && n < maxReadBuf
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}
