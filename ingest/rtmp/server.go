// Package rtmp is Podium's RTMP server: encoders publish into the hub,
// players play from it. lal (pkg/rtmp) speaks the protocol; every
// connection reaches lal only through Podium's guard (package
// github.com/podiumlive/podium/rtmp), which bounds what a peer can make it
// allocate or recurse into.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/q191201771/naza/pkg/nazalog"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// Config is what the server needs from Podium's configuration.
type Config struct {
	Addr string
	// PlayWait is how long a player waits for a publisher that is not
	// there yet.
	PlayWait time.Duration
	// WriteTimeout bounds each write to a player.
	WriteTimeout time.Duration
	// Limits bound what one connection may declare or nest.
	Limits rtmpproto.Limits
	// Vhost reports whether a vhost is configured.
	Vhost func(name string) bool
	// NoDelay reports whether a vhost's players get TCP_NODELAY (nil:
	// none do; the kernel coalesces small writes).
	NoDelay func(vhost string) bool
	// Access admits publishers and players (nil: everyone).
	Access *access.Guard
	// Redirect, when set, is asked before an admitted play subscribes:
	// an rtmp:// URL answers the play with an RTMP 302 to it (a master
	// whose group has the stream on another member, cluster.redirect);
	// "" plays here. params is the play's query.
	Redirect func(key stream.Key, params url.Values) string
	// Yield, when set, is asked when a publish finds its stream live: true
	// means the publisher there (an edge pull) gave way, and the publish
	// is tried again.
	Yield func(key stream.Key) bool
}

// Server accepts RTMP connections.
type Server struct {
	cfg Config
	hub *stream.Hub
	log *slog.Logger

	ln    net.Listener
	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
	ids   atomic.Uint64 // client ids, sent to hooks
}

// New makes a server; Listen binds it, Serve runs it.
func New(cfg Config, hub *stream.Hub, log *slog.Logger) *Server {
	if cfg.PlayWait <= 0 {
		cfg.PlayWait = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Limits == (rtmpproto.Limits{}) {
		cfg.Limits = rtmpproto.DefaultLimits()
	}
	if cfg.Vhost == nil {
		cfg.Vhost = func(name string) bool { return name == "__defaultVhost__" }
	}
	silenceLal()
	return &Server{cfg: cfg, hub: hub, log: log, conns: make(map[*conn]struct{})}
}

// lalQuiet guards lal's and naza's loggers, package variables of theirs
// that every session reads: they can only be process-wide, and are set once.
var lalQuiet sync.Once

// silenceLal turns off lal's own logger, which would print several lines
// per connection to stdout: Podium logs one line per session itself.
func silenceLal() {
	lalQuiet.Do(func() {
		l, err := nazalog.New(func(o *nazalog.Option) {
			o.Level = nazalog.LevelPanic
			o.IsToStdout = false
		})
		if err == nil {
			lalrtmp.Log = l
			nazalog.SetGlobalLogger(l) // naza's connection logs through its global
		}
	})
}

// Listen binds the configured address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("rtmp listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until ctx ends, then closes every connection
// and waits for their goroutines.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	s.log.Info("rtmp listening", "addr", s.ln.Addr().String())
	var err error
	for {
		var nc net.Conn
		nc, err = s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		c := newConn(s, nc)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.run(ctx)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("rtmp accept: %w", err)
}
