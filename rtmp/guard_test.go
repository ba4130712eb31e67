package rtmp

import (
	"bytes"
	"io"
	"math"
	"net"
	"testing"
	"time"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"
)

// trickleConn returns its input one byte per Read and discards writes.
type trickleConn struct {
	r         *bytes.Reader
	deadlines []time.Time
}

func (c *trickleConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.r.Read(p[:1])
}
func (c *trickleConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *trickleConn) Close() error                     { return nil }
func (c *trickleConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *trickleConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *trickleConn) SetDeadline(time.Time) error      { return nil }
func (c *trickleConn) SetWriteDeadline(time.Time) error { return nil }
func (c *trickleConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

func TestGuardConnOneByteReadsIntoLal(t *testing.T) {
	b := cat(publishSession(), message(3, 18, 0, cat(amfStr("@setDataFrame"), amfStr("onMetaData"),
		amfObj(amfKey("width"), amfNum(320))), 4096))
	for i := range 30 {
		b = append(b, message(6, 9, uint32(0xFFFFF0+i*40), video(5000), 4096)...)
		b = append(b, message(4, 8, uint32(0xFFFFF0+i*40), []byte{0xb2, 1, 2, 3}, 4096)...)
	}
	c := &trickleConn{r: bytes.NewReader(b)}
	g := NewGuardConn(c, Limits{HandshakeTimeout: time.Minute})
	require.Len(t, c.deadlines, 1)
	require.WithinDuration(t, time.Now().Add(time.Minute), c.deadlines[0], 5*time.Second)

	srv := &testServer{}
	err := lalrtmp.NewServerSession(&connObserver{srv: srv, g: g}, g).RunLoop()
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, g.Violation())
	require.Equal(t, int64(30), srv.video.Load())
	require.Equal(t, int64(30), srv.audio.Load())
	require.Greater(t, srv.maxTS.Load(), uint32(0xFFFFFF))
	require.True(t, c.deadlines[1].IsZero(), "Established clears the deadline")
}

func TestGuardConnViolationIsSticky(t *testing.T) {
	b := cat(handshakeBytes(), message(4, 8, 0, []byte{0xaf, 1}, 128), publishSession())
	g := NewGuardConn(&trickleConn{r: bytes.NewReader(b)}, Limits{})
	buf := make([]byte, 4096)
	var err error
	total := 0
	for err == nil {
		var n int
		n, err = g.Read(buf)
		total += n
	}
	require.ErrorIs(t, err, ErrViolation)
	require.Equal(t, 1+2*handshakeLen+11, total, "the header's last byte is withheld")
	require.Equal(t, err, g.Violation())
	n, err2 := g.Read(buf)
	require.Zero(t, n)
	require.Equal(t, err, err2)
}

func TestLimitsDefaults(t *testing.T) {
	require.Equal(t, DefaultLimits(), Limits{}.withDefaults())
	l := Limits{MaxChunkSize: math.MaxInt, MaxAMFDepth: 3}.withDefaults()
	require.Equal(t, 0x7fffffff, l.MaxChunkSize)
	require.Equal(t, 3, l.MaxAMFDepth)
}

// The inspector does not allocate on media (TestInspectorMediaDoesNotAllocate);
// neither may the GuardConn around it: an escaping local there once cost an
// allocation per Read, on every publisher's read path.
func TestGuardConnReadDoesNotAllocate(t *testing.T) {
	r := bytes.NewReader(nil)
	g := NewGuardConn(&chunkConn{r: r}, Limits{})
	r.Reset(publishSession())
	buf := make([]byte, 4096)
	for {
		if _, err := g.Read(buf); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
	}
	media := mediaStream()
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(media)
		for {
			if _, err := g.Read(buf); err != nil {
				if err != io.EOF {
					panic(err)
				}
				return
			}
		}
	})
	require.Zero(t, allocs)
}

// chunkConn reads from r in whatever sizes the caller asks for.
type chunkConn struct {
	trickleConn
	r *bytes.Reader
}

func (c *chunkConn) Read(p []byte) (int, error) { return c.r.Read(p) }
