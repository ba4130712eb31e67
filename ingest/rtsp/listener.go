package rtsp

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleListener hands gortsplib connections whose reads time out when the
// peer stays silent: gortsplib itself clears the read deadline between
// requests, so without this a half-sent request or an idle connection
// would be held forever. Before a connection has a session that plays or
// records, silence is cut after idle; after, after long (RTSP clients
// send a keepalive about every 30 s).
type idleListener struct {
	net.Listener
	idle, long time.Duration
	maxConns   int
	open       atomic.Int64
	rejected   func()
}

func (l *idleListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.maxConns > 0 && l.open.Load() >= int64(l.maxConns) {
			_ = c.Close()
			if l.rejected != nil {
				l.rejected()
			}
			continue
		}
		l.open.Add(1)
		return &idleConn{Conn: c, l: l}, nil
	}
}

// idleConn applies the idle read timeout unless gortsplib set a deadline
// of its own (it does while a TCP publisher records).
type idleConn struct {
	net.Conn
	l           *idleListener
	established atomic.Bool
	explicit    atomic.Bool
	timedOut    atomic.Bool
	closeOnce   sync.Once

	mu       sync.Mutex
	deadline time.Time // last deadline set by Read
}

func (c *idleConn) Read(b []byte) (int, error) {
	if !c.explicit.Load() {
		d := c.l.idle
		if c.established.Load() {
			d = c.l.long
		}
		// Moving the deadline costs a timer update: do it at most once
		// a second.
		c.mu.Lock()
		if now := time.Now(); c.deadline.IsZero() || c.deadline.Sub(now) < d-time.Second {
			c.deadline = now.Add(d)
			_ = c.Conn.SetReadDeadline(c.deadline)
		}
		c.mu.Unlock()
	}
	n, err := c.Conn.Read(b)
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !c.explicit.Load() {
		c.timedOut.Store(true)
	}
	return n, err
}

// idleTimeout is the timeout that cut the connection, if one did.
func (c *idleConn) idleTimeout() time.Duration {
	if !c.timedOut.Load() {
		return 0
	}
	if c.established.Load() {
		return c.l.long
	}
	return c.l.idle
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.explicit.Store(!t.IsZero())
	c.deadline = time.Time{}
	return c.Conn.SetReadDeadline(t)
}

func (c *idleConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.explicit.Store(!t.IsZero())
	c.deadline = time.Time{}
	return c.Conn.SetDeadline(t)
}

func (c *idleConn) Close() error {
	c.closeOnce.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
