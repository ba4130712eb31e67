package rtmp

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"
)

// sessionEnd is how one server-side lal session ended.
type sessionEnd struct {
	violation error
	err       error
}

// testServer accepts on 127.0.0.1 and runs a real lal ServerSession on each
// connection, guarded unless unguarded is set. No recover(): a panic in lal
// fails the whole test binary.
type testServer struct {
	ln        net.Listener
	ends      chan sessionEnd
	video     atomic.Int64
	audio     atomic.Int64
	maxTS     atomic.Uint32
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
	lim       Limits
	unguarded bool
}

type connObserver struct {
	srv *testServer
	g   *GuardConn
}

func (o *connObserver) OnRtmpConnect(*lalrtmp.ServerSession, lalrtmp.ObjectPairArray) {}

func (o *connObserver) OnNewRtmpPubSession(s *lalrtmp.ServerSession) error {
	s.SetPubSessionObserver(o)
	if o.g != nil {
		o.g.Established()
	}
	return nil
}

func (o *connObserver) OnNewRtmpSubSession(*lalrtmp.ServerSession) error {
	if o.g != nil {
		o.g.Established()
	}
	return nil
}

func (o *connObserver) OnReadRtmpAvMsg(msg base.RtmpMsg) {
	switch msg.Header.MsgTypeId {
	case base.RtmpTypeIdVideo:
		o.srv.video.Add(1)
	case base.RtmpTypeIdAudio:
		o.srv.audio.Add(1)
	}
	for {
		cur := o.srv.maxTS.Load()
		if msg.Header.TimestampAbs <= cur || o.srv.maxTS.CompareAndSwap(cur, msg.Header.TimestampAbs) {
			return
		}
	}
}

func startServer(t *testing.T, lim Limits, unguarded bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &testServer{ln: ln, ends: make(chan sessionEnd, 1024), lim: lim, unguarded: unguarded}
	srv.wg.Add(1)
	go srv.acceptLoop()
	t.Cleanup(func() {
		_ = ln.Close()
		srv.mu.Lock()
		for _, c := range srv.conns {
			_ = c.Close()
		}
		srv.mu.Unlock()
		srv.wg.Wait()
	})
	return srv
}

func (srv *testServer) acceptLoop() {
	defer srv.wg.Done()
	for {
		c, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		srv.conns = append(srv.conns, c)
		srv.mu.Unlock()
		obs := &connObserver{srv: srv}
		var conn net.Conn = c
		if !srv.unguarded {
			obs.g = NewGuardConn(c, srv.lim)
			conn = obs.g
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			err := lalrtmp.NewServerSession(obs, conn).RunLoop()
			end := sessionEnd{err: err}
			if obs.g != nil {
				end.violation = obs.g.Violation()
			}
			srv.ends <- end
		}()
	}
}

func (srv *testServer) addr() string { return srv.ln.Addr().String() }

// nextEnd waits for a session to end.
func (srv *testServer) nextEnd(t *testing.T, within time.Duration) sessionEnd {
	t.Helper()
	select {
	case e := <-srv.ends:
		return e
	case <-time.After(within):
		require.FailNow(t, "no session ended in time")
		return sessionEnd{}
	}
}

// attack dials, writes b (in the background: the server may close first)
// and waits for the server to close the connection.
func attack(t *testing.T, addr string, b []byte, within time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	go func() { _, _ = c.Write(b) }()
	requireClosed(t, c, within)
}

// requireClosed reads until the peer closes; a timeout fails.
func requireClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	_, err := io.Copy(io.Discard, c)
	if err != nil {
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "connection still open after %v", within)
	}
}

func TestAttackDeepNestedConnect(t *testing.T) {
	attackBytes := cat(handshakeBytes(), setChunkSize(1<<20),
		message(3, 20, 0, nestedConnect(2_500_000), 1<<20))
	require.Greater(t, len(attackBytes), 10_000_000)
	for _, tc := range []struct {
		name string
		lim  Limits
		want string
	}{
		{"size cap", Limits{}, "command message of 10000020 bytes exceeds 65536"},
		// With the size cap lifted, the depth walker alone must stop it.
		{"depth cap", Limits{MaxCommandSize: 16 << 20}, "nesting too deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.lim, false)
			attack(t, srv.addr(), attackBytes, 20*time.Second)
			end := srv.nextEnd(t, 10*time.Second)
			require.ErrorIs(t, end.violation, ErrViolation)
			require.ErrorContains(t, end.violation, tc.want)
		})
	}
}

// declare16MiB is a handshake, then a chunk header declaring a 16 MiB
// command message, and a few of its bytes.
func declare16MiB() []byte {
	return cat(handshakeBytes(), basicHeader(0, 3), []byte{0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0},
		amfStr("connect"))
}

func TestAttackDeclaredLength200Conns(t *testing.T) {
	srv := startServer(t, Limits{}, false)
	var before, after runtimeMem
	before.read()
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.addr())
			if err != nil {
				t.Error(err)
				return
			}
			conns <- c
			_, _ = c.Write(declare16MiB()) // then hold the connection open
		}()
	}
	wg.Wait()
	close(conns)
	start := time.Now()
	for c := range conns {
		requireClosed(t, c, 10*time.Second)
		_ = c.Close()
	}
	for range 200 {
		end := srv.nextEnd(t, 10*time.Second)
		require.ErrorContains(t, end.violation, "command message of 16777215 bytes exceeds 65536")
	}
	t.Logf("200 connections closed in %v", time.Since(start))
	after.read()
	grew := after.totalAlloc - before.totalAlloc
	t.Logf("allocated %d KiB for 200 connections", grew>>10)
	require.Less(t, grew, uint64(64<<20))
}

// TestAttackDeclaredLengthMeasurable shows the measurement above can fail:
// one unguarded lal session given the same bytes allocates the 16 MiB.
func TestAttackDeclaredLengthMeasurable(t *testing.T) {
	srv := startServer(t, Limits{}, true)
	var before, now runtimeMem
	before.read()
	c, err := net.Dial("tcp", srv.addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(declare16MiB())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		now.read()
		return now.totalAlloc-before.totalAlloc >= 16<<20
	}, 10*time.Second, 20*time.Millisecond)
}

func TestAttackMisc(t *testing.T) {
	afterConnect := cat(handshakeBytes(), message(3, 20, 0, connectCmd(), 128))
	csids := handshakeBytes()
	for i := range 100_000 {
		csids = append(csids, message(uint32(2+i%65598), 5, 0, put32(nil, 1), 128)...)
	}
	garbage := []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is a TLS hello, not RTMP")
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"garbage", garbage, "handshake version 22"},
		{"chunk size 0", cat(handshakeBytes(), setChunkSize(0)), "chunk size 0"},
		{"100000 csids", csids, "one more than the 32 allowed"},
		{"short user control", cat(afterConnect, message(2, 4, 0, []byte{0}, 128)), "user control message of 1 bytes"},
		{"short ping request", cat(afterConnect, message(2, 4, 0, []byte{0, 6, 1}, 128)), "want at least 6"},
		{"audio before publish", cat(afterConnect, message(4, 8, 0, []byte{0xaf, 1, 2}, 128)), "audio message before publish"},
		{"aggregate before publish", cat(afterConnect, message(4, 22, 0, aggregateSub(9, video(10)), 128)), "aggregate message before publish"},
		{"video after play", cat(afterConnect,
			message(8, 20, 0, cat(amfStr("play"), amfNum(3), []byte{amfNull}, amfStr("s1")), 128),
			message(6, 9, 0, video(10), 128)), "video message before publish"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, Limits{}, false)
			attack(t, srv.addr(), tc.b, 10*time.Second)
			end := srv.nextEnd(t, 10*time.Second)
			require.ErrorIs(t, end.violation, ErrViolation)
			require.ErrorContains(t, end.violation, tc.want)
		})
	}

	t.Run("truncated handshake held open", func(t *testing.T) {
		srv := startServer(t, Limits{HandshakeTimeout: 300 * time.Millisecond}, false)
		c, err := net.Dial("tcp", srv.addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(handshakeBytes()[:700])
		require.NoError(t, err)
		start := time.Now()
		requireClosed(t, c, 5*time.Second)
		require.Less(t, time.Since(start), 3*time.Second)
		end := srv.nextEnd(t, 5*time.Second)
		require.NoError(t, end.violation)
		require.ErrorIs(t, end.err, os.ErrDeadlineExceeded)
	})

	t.Run("idle after connect held open", func(t *testing.T) {
		srv := startServer(t, Limits{HandshakeTimeout: 300 * time.Millisecond}, false)
		c, err := net.Dial("tcp", srv.addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(afterConnect)
		require.NoError(t, err)
		requireClosed(t, c, 5*time.Second)
		require.ErrorIs(t, srv.nextEnd(t, 5*time.Second).err, os.ErrDeadlineExceeded)
	})
}

type runtimeMem struct{ totalAlloc uint64 }

// read records the bytes allocated so far: TotalAlloc counts every
// allocation, even one already collected, so a buffer that lal grew and
// dropped still shows.
func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.totalAlloc = s.TotalAlloc
}
