package rtmp

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// Sink writes one peer's RTMP media messages: a player's (ingest) or a
// slave's (forward). While the peer keeps up, the publisher's goroutine
// writes each packet straight into the socket (non-blocking, via the hub's
// DirectFunc): no goroutine wakes per packet, which is what a relay spends
// most of its CPU on otherwise. Whatever the socket does not take stays in
// pending and the peer's own goroutine finishes it with blocking writes,
// while the hub queues (and, if the peer is too slow, drops) what follows.
//
// wmu orders every write on the socket: direct writes, the peer
// goroutine's, and control messages (lal's, pings, onStatus). Whoever holds
// it writes pending first, so chunk streams never interleave mid-message.
type Sink struct {
	nc      net.Conn
	rc      syscall.RawConn
	timeout time.Duration
	written atomic.Uint64

	wmu       sync.Mutex
	w         PacketWriter
	shared    *PacketCache // the stream's, set by Attach; used by direct only
	buf       []byte       // held audio (see hold), then what is being written
	pending   []byte
	held      bool          // buf starts with held audio messages
	heldDTS   time.Duration // the first held packet's
	video     bool          // a video packet was written; lastVideo is its DTS
	lastVideo time.Duration
	acked     uint64 // TCP bytes_acked at the last progress check
	err       error  // the socket failed: the peer goroutine ends the session

	// tryWrite's callback and its arguments, made once: a closure per
	// write would be heap allocations per packet and peer.
	rawFn  func(fd uintptr)
	rawBuf []byte
	rawN   int
	rawErr error
}

// NewSink returns a sink on nc whose blocking writes fail after timeout
// without progress. setDataFrame: metadata as a publisher sends it (push).
func NewSink(nc net.Conn, timeout time.Duration, setDataFrame bool) *Sink {
	s := &Sink{nc: nc, timeout: timeout}
	s.w.SetDataFrame = setDataFrame
	s.rawFn = func(fd uintptr) { s.rawN, s.rawErr = RawWrite(fd, s.rawBuf) }
	if sc, ok := nc.(syscall.Conn); ok {
		s.rc, _ = sc.SyscallConn()
	}
	return s
}

// Written is the number of bytes written to the socket.
func (s *Sink) Written() uint64 { return s.written.Load() }

// Attach makes the sink r's DirectFunc, sharing each packet's encoding
// with the stream's other sinks. Call it once, before r delivers packets.
func (s *Sink) Attach(r *stream.Reader) {
	s.shared = streamPacketCache(r.Stream())
	r.SetDirect(s.direct)
}

// direct is the stream.DirectFunc: called on the publisher's goroutine,
// under the stream's lock (which is what guards s.shared).
func (s *Sink) direct(p *media.Packet, meta media.Metadata, ver uint64) stream.DirectResult {
	if s.rc == nil || !s.wmu.TryLock() {
		return stream.DirectRefused // lal is writing a control message: queue
	}
	defer s.wmu.Unlock()
	if s.err != nil {
		return stream.DirectPending // wake the player goroutine to end
	}
	s.buf = s.w.AppendConfig(s.w.AppendMetadata(s.buf, meta, ver), p)
	out := s.shared.message(p) // usually sent as it is: no copy
	if s.hold(p) {
		s.buf = append(s.buf, out...)
		return stream.DirectSent
	}
	if len(s.buf) > 0 {
		s.buf = append(s.buf, out...) // after held audio, metadata or a sequence header
		out = s.buf
	}
	s.held = false
	defer func() { s.buf = s.buf[:0] }()
	n, err := s.tryWrite(out)
	s.written.Add(uint64(max(n, 0)))
	switch {
	case err != nil:
		s.err = err
		return stream.DirectPending
	case n == len(out):
		return stream.DirectSent
	}
	s.pending = append(s.pending[:0], out[n:]...)
	return stream.DirectPending
}

// Holding audio: an audio message of a stream with live video waits in
// buf for the next message (usually the next video frame, at most a frame
// interval later) and goes out with it in one send(2). A player then costs
// one send(2) per video frame instead of one per message: at 30 fps with
// 44.1 kHz AAC that is 30 calls a second instead of 73, and the sends are
// most of an edge's CPU per viewer (bench/edge). nginx-rtmp sends every
// message on its own; SRS merges writes for 350 ms by default. Bounded:
// audio is held only while video came within videoLive, for at most
// holdSpan of media time and holdBytes, so an audio-only stream, or a
// stream whose video stopped, is sent message by message.
const (
	videoLive = 200 * time.Millisecond
	holdSpan  = 100 * time.Millisecond
	holdBytes = 16 << 10
)

// hold reports whether p's message is to be held (appended to buf) rather
// than written now. wmu is held.
func (s *Sink) hold(p *media.Packet) bool {
	if p.Track.Kind == media.KindVideo {
		s.video, s.lastVideo = true, p.DTS
		return false
	}
	if p.Track.Kind != media.KindAudio || !s.video || p.DTS-s.lastVideo > videoLive || p.DTS < s.lastVideo-videoLive ||
		len(s.buf) > holdBytes || (s.held && p.DTS-s.heldDTS > holdSpan) {
		return false
	}
	if !s.held {
		s.held, s.heldDTS = true, p.DTS
	}
	return true
}

// RawWrite and RawRead are send(2) and recv(2) on a non-blocking socket
// (not write(2) and read(2): those first go through the file layer, which
// was ~3% of a forward's samples),
// without telling the scheduler (syscall.Write and Read do). The calls
// cannot block, and announcing them costs more than they do on a relay:
// each exit from an announced syscall may wake the runtime's monitor
// thread, which then polls every 20 µs for a millisecond, and a call that
// takes over 20 µs (a loopback write runs the receiver's TCP stack) gets
// its P handed to another thread. Measured with perf: about a third of a
// relay's CPU went to that monitor and to thread hand-offs.
func RawWrite(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

func RawRead(fd uintptr, b []byte) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// tryWrite makes one non-blocking send(2). wmu is held. Through Control,
// not Write: Control keeps the fd open during the call, which is all a
// call that never waits needs, and skips Write's lock and poller reset
// (≈ 2% of a forward's samples at 16 destinations).
func (s *Sink) tryWrite(b []byte) (int, error) {
	s.rawBuf = b
	err := s.rc.Control(s.rawFn)
	n, werr := s.rawN, s.rawErr
	s.rawBuf, s.rawErr = nil, nil
	if err != nil {
		return 0, err
	}
	// RawWrite returns the bare Errno: a plain compare (errors.Is, with
	// its reflection, cost more than the compare on every packet).
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if n < 0 {
		n = 0
	}
	return n, werr
}

// writeLocked writes pending, then b, blocking while the peer makes
// progress. The deadline is cleared after: it would fail the direct path's
// writes too.
func (s *Sink) writeLocked(b []byte) error {
	if s.err != nil {
		return s.err
	}
	if len(s.pending) == 0 && len(b) == 0 {
		return nil
	}
	defer func() { _ = s.nc.SetWriteDeadline(time.Time{}) }()
	if len(s.pending) > 0 {
		if err := s.blockingWrite(s.pending); err != nil {
			return err
		}
		s.pending = s.pending[:0]
	}
	return s.blockingWrite(b)
}

// blockingWrite writes b whole. The timeout measures progress: when it
// expires while the peer still acknowledges bytes (a slow but live link),
// the write goes on; a peer that acknowledged nothing for a whole timeout
// fails it. (The kernel wakes a blocked writer only when a third of the
// send buffer is free, which a slow link may take longer than the timeout
// to free, so progress is read from TCP itself.)
func (s *Sink) blockingWrite(b []byte) error {
	for len(b) > 0 {
		if err := s.nc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
			s.err = err
			return err
		}
		n, err := s.nc.Write(b)
		s.written.Add(uint64(n))
		b = b[n:]
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && s.progressed() {
			continue
		}
		s.err = err
		return err
	}
	return nil
}

// progressed reports whether the peer acknowledged bytes since the last
// call (TCP_INFO's bytes_acked).
func (s *Sink) progressed() bool {
	if s.rc == nil {
		return false
	}
	var acked uint64
	var ierr error
	if err := s.rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); ierr == nil {
			acked = info.Bytes_acked
		}
	}); err != nil || ierr != nil {
		return false
	}
	if acked > s.acked {
		s.acked = acked
		return true
	}
	return false
}

// batchBytes is the most WriteBatch encodes before writing; a buffer
// over keepBytes is let go after it (live batches and held audio are a
// few KB: a player kept ~64 KiB from its first, GOP-cache, batch).
const (
	batchBytes = 64 << 10
	keepBytes  = 16 << 10
)

// WriteBatch is the peer goroutine's path: finish pending, then the
// packets the hub queued meanwhile.
func (s *Sink) WriteBatch(batch []media.Packet, meta media.Metadata, ver uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// After the held audio, if any. A GOP-cache burst (a new player's
	// first batch, ~200 KB at 1.5 Mbit/s) is written in pieces of about
	// batchBytes: a buffer for the whole burst per joining player was most
	// of an edge's RSS per viewer (bench/edge).
	s.buf = s.w.AppendMetadata(s.buf, meta, ver)
	s.held = false
	for i := range batch {
		s.buf = s.w.AppendPacket(s.buf, &batch[i])
		if len(s.buf) >= batchBytes {
			if err := s.writeLocked(s.buf); err != nil {
				return err
			}
			s.buf = s.buf[:0]
		}
	}
	err := s.writeLocked(s.buf)
	s.buf = s.buf[:0]
	if cap(s.buf) > keepBytes {
		s.buf = nil // a burst's or a keyframe's: don't keep it for the session
	}
	return err
}

// Control writes a message of lal's or ours (onStatus, ping) in order.
func (s *Sink) Control(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	out := b
	if s.held {
		s.buf = append(s.buf, b...)
		out, s.held = s.buf, false
		defer func() { s.buf = s.buf[:0] }()
	}
	if err := s.writeLocked(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close takes the write lock and runs fn (a close of the socket), so it
// never cuts a message in half.
func (s *Sink) Close(fn func()) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fn()
}
