package rtsp

// Connections: what the server tracks per RTSP connection (its one log
// line, request and SETUP floods, the idle timeout) and the ordering of
// play SETUPs that gortsplib's own bookkeeping needs.

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/podiumlive/podium/ingest/stream"
)

// connState is what the server tracks per connection.
type connState struct {
	remote   string
	start    time.Time
	setups   int
	requests int
	window   time.Time
	kill     string // why the server closed it (a flood, a limit)
	session  bool   // it carried a session, which logs its own end
	sess     *session
	allowed  map[stream.Key]bool
	setup    bool // it holds Server.setupMu until its SETUP's response
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (s *Server) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	cs := &connState{remote: ctx.Conn.NetConn().RemoteAddr().String(), start: time.Now(), window: time.Now()}
	s.mu.Lock()
	s.conns[ctx.Conn] = cs
	s.mu.Unlock()
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose: the
// connection's one log line (a session logs its own).
func (s *Server) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	s.releaseSetup(ctx.Conn) // OnResponse ran first; never left held
	s.mu.Lock()
	cs := s.conns[ctx.Conn]
	delete(s.conns, ctx.Conn)
	s.mu.Unlock()
	if cs == nil {
		return
	}
	d := time.Since(cs.start).Round(time.Millisecond)
	log := s.log.With("remote", cs.remote)
	cerr := ctx.Error
	if ic, ok := ctx.Conn.NetConn().(*idleConn); ok {
		if to := ic.idleTimeout(); to > 0 {
			cerr = fmt.Errorf("no complete request within %s", to)
		}
	}
	if cs.sess != nil && !benign(cerr) {
		// true: its session logs the reason; false: it already logged its end.
		cs.session = cs.sess.connFailed(cerr)
	}
	switch {
	case cs.kill != "" && cs.session:
		log.Debug("rtsp connection closed", "reason", cs.kill, "after", d) // the session logs it
	case cs.kill != "":
		s.rejected.Add(1)
		log.Warn("rtsp connection rejected", "reason", cs.kill, "after", d)
	case !benign(cerr) && !cs.session:
		s.rejected.Add(1)
		log.Warn("rtsp connection rejected", "reason", cerr.Error(), "after", d)
	case cs.session:
		log.Debug("rtsp connection closed", "reason", reason(cerr), "after", d)
	default:
		log.Info("rtsp connection closed", "reason", reason(cerr), "after", d)
	}
}

// OnRequest implements gortsplib.ServerHandlerOnRequest: floods of
// requests or SETUPs close the connection.
func (s *Server) OnRequest(sc *gortsplib.ServerConn, req *base.Request) {
	s.mu.Lock()
	cs := s.conns[sc]
	kill := false
	if cs != nil && cs.kill == "" {
		now := time.Now()
		if now.Sub(cs.window) > 10*time.Second {
			cs.window, cs.requests = now, 0
		}
		cs.requests++
		if req.Method == base.Setup {
			cs.setups++
		}
		switch {
		case cs.setups > s.cfg.MaxSetups:
			cs.kill = fmt.Sprintf("setup flood: more than %d SETUP requests", s.cfg.MaxSetups)
		case cs.requests > s.cfg.MaxRequests:
			cs.kill = fmt.Sprintf("request flood: more than %d requests in 10s", s.cfg.MaxRequests)
		}
		kill = cs.kill != ""
	}
	why := ""
	if cs != nil {
		why = cs.kill
	}
	s.mu.Unlock()
	if kill {
		if x := sc.Session(); x != nil {
			if ss := s.session(x); ss != nil {
				ss.setWhy(why)
			}
			x.Close()
		}
		sc.Close()
	}
}

// OnResponse implements gortsplib.ServerHandlerOnResponse: it is called
// on the connection's goroutine after gortsplib has handled the request
// and before it writes the response; a SETUP gives setupMu back here.
func (s *Server) OnResponse(sc *gortsplib.ServerConn, _ *base.Response) {
	s.releaseSetup(sc)
}

// holdSetup takes setupMu for sc's SETUP (see Server.setupMu) until
// releaseSetup.
func (s *Server) holdSetup(sc *gortsplib.ServerConn) {
	s.setupMu.Lock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.conns[sc]; cs != nil {
		cs.setup = true
	} else {
		s.setupMu.Unlock() // no OnResponse will find it
	}
}

// releaseSetup gives setupMu back if sc holds it.
func (s *Server) releaseSetup(sc *gortsplib.ServerConn) {
	s.mu.Lock()
	cs := s.conns[sc]
	held := cs != nil && cs.setup
	if held {
		cs.setup = false
	}
	s.mu.Unlock()
	if held {
		s.setupMu.Unlock()
	}
}

func (s *Server) conn(sc *gortsplib.ServerConn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[sc]
}

// establish relaxes the idle timeout of the connection: it plays or
// records now.
func establish(sc *gortsplib.ServerConn) {
	if c, ok := sc.NetConn().(*idleConn); ok {
		c.established.Store(true)
	}
}
