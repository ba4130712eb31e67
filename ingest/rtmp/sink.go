package rtmp

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// playSink writes one player's RTMP messages. While the player keeps up,
// the publisher's goroutine writes each packet straight into the socket
// (non-blocking, via the hub's DirectFunc): no goroutine wakes per packet,
// which is what a relay spends most of its CPU on otherwise. Whatever the
// socket does not take stays in pending and the player's own goroutine
// finishes it with blocking writes, while the hub queues (and, if the
// player is too slow, drops) what follows.
//
// wmu orders every write on the socket: direct writes, the player
// goroutine's, and lal's own control messages (via gateConn). Whoever holds
// it writes pending first, so chunk streams never interleave mid-message.
type playSink struct {
	nc      net.Conn
	rc      syscall.RawConn
	timeout time.Duration

	wmu     sync.Mutex
	w       rtmpproto.PacketWriter
	buf     []byte
	pending []byte
	err     error // the socket failed: the player goroutine ends the session
}

func newPlaySink(nc net.Conn, timeout time.Duration) *playSink {
	s := &playSink{nc: nc, timeout: timeout}
	if sc, ok := nc.(syscall.Conn); ok {
		s.rc, _ = sc.SyscallConn()
	}
	return s
}

// direct is the stream.DirectFunc: called on the publisher's goroutine.
func (s *playSink) direct(p *media.Packet, meta media.Metadata, ver uint64) stream.DirectResult {
	if s.rc == nil || !s.wmu.TryLock() {
		return stream.DirectRefused // lal is writing a control message: queue
	}
	defer s.wmu.Unlock()
	if s.err != nil {
		return stream.DirectPending // wake the player goroutine to end
	}
	s.buf = s.w.AppendMetadata(s.buf[:0], meta, ver)
	s.buf = s.w.AppendPacket(s.buf, p)
	n, err := s.tryWrite(s.buf)
	switch {
	case err != nil:
		s.err = err
		return stream.DirectPending
	case n == len(s.buf):
		return stream.DirectSent
	}
	s.pending = append(s.pending[:0], s.buf[n:]...)
	return stream.DirectPending
}

// rawWrite and rawRead are write(2) and read(2) on a non-blocking socket,
// without telling the scheduler (syscall.Write and Read do). The calls
// cannot block, and announcing them costs more than they do on a relay:
// each exit from an announced syscall may wake the runtime's monitor
// thread, which then polls every 20 µs for a millisecond, and a call that
// takes over 20 µs (a loopback write runs the receiver's TCP stack) gets
// its P handed to another thread. Measured with perf: about a third of a
// relay's CPU went to that monitor and to thread hand-offs.
func rawWrite(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

func rawRead(fd uintptr, b []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// tryWrite makes one non-blocking write(2).
func (s *playSink) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	if err := s.rc.Write(func(fd uintptr) bool {
		n, werr = rawWrite(fd, b)
		return true // one attempt: never wait for the socket here
	}); err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) {
		return 0, nil
	}
	if n < 0 {
		n = 0
	}
	return n, werr
}

// writeLocked writes pending, then b, blocking up to the timeout. The
// deadline is cleared after: it would fail the direct path's writes too.
func (s *playSink) writeLocked(b []byte) error {
	if s.err != nil {
		return s.err
	}
	if len(s.pending) == 0 && len(b) == 0 {
		return nil
	}
	if err := s.nc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		s.err = err
		return err
	}
	defer func() { _ = s.nc.SetWriteDeadline(time.Time{}) }()
	if len(s.pending) > 0 {
		if _, err := s.nc.Write(s.pending); err != nil {
			s.err = err
			return err
		}
		s.pending = s.pending[:0]
	}
	if len(b) > 0 {
		if _, err := s.nc.Write(b); err != nil {
			s.err = err
			return err
		}
	}
	return nil
}

// writeBatch is the player goroutine's path: finish pending, then the
// packets the hub queued meanwhile.
func (s *playSink) writeBatch(batch []media.Packet, meta media.Metadata, ver uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.buf = s.w.AppendMetadata(s.buf[:0], meta, ver)
	for i := range batch {
		s.buf = s.w.AppendPacket(s.buf, &batch[i])
	}
	err := s.writeLocked(s.buf)
	if cap(s.buf) > 256<<10 {
		s.buf = nil // a GOP-cache burst: don't keep it for the whole session
	}
	return err
}

// control writes a message of lal's or ours (onStatus) in order.
func (s *playSink) control(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeLocked(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// gateConn is the net.Conn lal gets: the guard for reads, and for writes
// the play sink once the session plays (so lal's control messages queue
// behind a half-written media message instead of cutting into it). It also
// coarsens the read deadline lal resets before every read: moving a timer
// per read costs more than the read on a busy relay, and a 10 s timeout
// does not need millisecond precision.
type gateConn struct {
	*rtmpproto.GuardConn
	sink     atomic.Pointer[playSink]
	deadline time.Time // last read deadline set; only lal's read goroutine touches it
}

func (g *gateConn) Write(b []byte) (int, error) {
	if s := g.sink.Load(); s != nil {
		return s.control(b)
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

// bufConn reads the socket through a 64 KiB buffer, with rawRead. lal
// reads through a 4 KiB one, so a 10 KiB video frame that arrived in one
// burst would take three read(2) calls; here it takes one, and lal's reads
// are served from memory. The guard inspects bytes as lal takes them,
// after this buffer.
type bufConn struct {
	net.Conn
	rc   syscall.RawConn
	buf  []byte
	r, w int
}

func newBufConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &bufConn{Conn: c, rc: rc, buf: make([]byte, 64<<10)}
}

func (b *bufConn) Read(p []byte) (int, error) {
	if b.r == b.w {
		var n int
		var rerr error
		// Returning false on EAGAIN parks the goroutine in the netpoller
		// until the socket is readable (or the read deadline passes).
		if err := b.rc.Read(func(fd uintptr) bool {
			n, rerr = rawRead(fd, b.buf)
			return !errors.Is(rerr, syscall.EAGAIN)
		}); err != nil {
			return 0, err
		}
		if rerr != nil {
			return 0, rerr
		}
		if n == 0 {
			return 0, io.EOF
		}
		b.r, b.w = 0, n
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}
