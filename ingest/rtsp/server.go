package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// ServerConfig is what the RTSP server needs from Podium's configuration.
type ServerConfig struct {
	// Addr is the RTSP (TCP) address. RTP and RTCP over UDP use the
	// even/odd port pair of the same number (8554 → 8554/8555; TCP and
	// UDP ports are distinct), when free; else only TCP is offered.
	Addr string
	// PlayWait is how long a player waits for a stream that is not live.
	PlayWait time.Duration
	// Vhost reports whether a vhost is configured.
	Vhost func(name string) bool
	// Guard gates publish and play (nil allows everything).
	Guard *access.Guard
	// RequestTimeout cuts a connection that sends no complete request for
	// this long before it plays or records (default 10 s); a publisher
	// that sends nothing for this long is cut too.
	RequestTimeout time.Duration
	// MaxSetups bounds the SETUP requests of one connection (default 32).
	MaxSetups int
	// MaxRequests bounds the requests of one connection in 10 s (default
	// 300; RTP over TCP does not count).
	MaxRequests int
	// MaxConns bounds the open connections (default 1024).
	MaxConns int
	// IdleClose ends a play stream (the hub reader feeding RTSP players)
	// this long after its last player left (default 10 s).
	IdleClose time.Duration
}

// ServerStats are the server's counters.
type ServerStats struct {
	// Conns is the number of open connections.
	Conns int `json:"conns"`
	// Publishers and Players are the sessions now recording and playing.
	Publishers int `json:"publishers"`
	Players    int `json:"players"`
	// Rejected counts connections and sessions closed for bad input,
	// floods, timeouts or limits.
	Rejected uint64 `json:"rejected"`
	// BadPackets counts RTP/RTCP packets that did not decode, or were
	// lost, across every publisher.
	BadPackets uint64 `json:"bad_packets"`
}

// Server is the RTSP server.
type Server struct {
	cfg ServerConfig
	hub *stream.Hub
	log *slog.Logger

	srv     *gortsplib.Server
	ln      *idleListener
	udp     bool
	ctx     context.Context
	cancel  context.CancelFunc
	started bool

	// setupMu orders the part of a play SETUP that gortsplib runs after
	// OnSetup: it writes the session's transport and medias there while
	// a UDP SETUP of another session reads those of every reader of the
	// stream, with no lock of its own (v4.16.2 and upstream). OnSetup
	// takes it once it has a stream to return, OnResponse gives it back:
	// a short in-memory stretch, never a hook call.
	setupMu sync.Mutex

	mu       sync.Mutex
	plays    map[stream.Key]*playStream
	sessions map[*gortsplib.ServerSession]*session
	conns    map[*gortsplib.ServerConn]*connState
	wg       sync.WaitGroup

	rejected   atomic.Uint64
	badPackets atomic.Uint64
}

// NewServer makes a server; Listen binds it, Serve runs it.
func NewServer(cfg ServerConfig, hub *stream.Hub, log *slog.Logger) *Server {
	if cfg.PlayWait <= 0 {
		cfg.PlayWait = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.MaxSetups <= 0 {
		cfg.MaxSetups = 32
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 300
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = 10 * time.Second
	}
	if cfg.Vhost == nil {
		cfg.Vhost = func(name string) bool { return name == streamurl.DefaultVhost }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, hub: hub, log: log, ctx: ctx, cancel: cancel,
		plays:    make(map[stream.Key]*playStream),
		sessions: make(map[*gortsplib.ServerSession]*session),
		conns:    make(map[*gortsplib.ServerConn]*connState),
	}
}

// udpPorts returns the RTP/RTCP addresses paired with the RTSP address,
// or false when that port is 0 or the UDP ports are taken.
func udpPorts(addr string) (rtpAddr, rtcpAddr string, ok bool) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", false
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port <= 0 {
		return "", "", false
	}
	rtp := port &^ 1
	rtpAddr = net.JoinHostPort(host, strconv.Itoa(rtp))
	rtcpAddr = net.JoinHostPort(host, strconv.Itoa(rtp+1))
	for _, a := range []string{rtpAddr, rtcpAddr} {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return "", "", false
		}
		_ = pc.Close()
	}
	return rtpAddr, rtcpAddr, true
}

// Listen binds the RTSP address (and the UDP ports when free).
func (s *Server) Listen() error {
	s.srv = &gortsplib.Server{
		Handler:      s,
		RTSPAddress:  s.cfg.Addr,
		ReadTimeout:  s.cfg.RequestTimeout,
		WriteTimeout: 10 * time.Second,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			s.ln = &idleListener{Listener: ln, idle: s.cfg.RequestTimeout, long: 2 * time.Minute,
				maxConns: s.cfg.MaxConns, rejected: func() { s.rejected.Add(1) }}
			return s.ln, nil
		},
	}
	if rtp, rtcp, ok := udpPorts(s.cfg.Addr); ok {
		s.srv.UDPRTPAddress, s.srv.UDPRTCPAddress = rtp, rtcp
		s.udp = true
	} else {
		s.log.Warn("rtsp over udp off: its ports are not free", "addr", s.cfg.Addr)
	}
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("rtsp listen %s: %w", s.cfg.Addr, err)
	}
	s.started = true
	return nil
}

// Addr is the bound RTSP address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve runs until ctx ends, then closes every connection, session and
// play stream, and waits for their goroutines.
func (s *Server) Serve(ctx context.Context) error {
	if !s.started {
		return errors.New("rtsp serve: not listening")
	}
	attrs := []any{"addr", s.ln.Addr().String()}
	if s.udp {
		attrs = append(attrs, "udp_rtp", s.srv.UDPRTPAddress, "udp_rtcp", s.srv.UDPRTCPAddress)
	}
	s.log.Info("rtsp listening", attrs...)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Wait() }()
	var err error
	select {
	case <-ctx.Done():
		s.cancel() // first: handlers waiting for a play stream return
		s.srv.Close()
		<-errc
	case err = <-errc:
	}
	s.cancel()
	s.mu.Lock()
	plays := make([]*playStream, 0, len(s.plays))
	for _, ps := range s.plays {
		plays = append(plays, ps)
	}
	s.mu.Unlock()
	for _, ps := range plays {
		ps.close()
	}
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("rtsp serve: %w", err)
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	st := ServerStats{Conns: len(s.conns)}
	for _, ss := range s.sessions {
		switch ss.role {
		case rolePublish:
			st.Publishers++
		case rolePlay:
			st.Players++
		}
	}
	s.mu.Unlock()
	st.Rejected = s.rejected.Load()
	st.BadPackets = s.badPackets.Load()
	return st
}

// OnSessionOpen implements gortsplib.ServerHandlerOnSessionOpen.
func (s *Server) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	ss := &session{srv: s, ss: ctx.Session, remote: ctx.Conn.NetConn().RemoteAddr().String(), start: time.Now()}
	s.mu.Lock()
	s.sessions[ctx.Session] = ss
	if cs := s.conns[ctx.Conn]; cs != nil {
		cs.session, cs.sess = true, ss
	}
	s.mu.Unlock()
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	ss := s.sessions[ctx.Session]
	delete(s.sessions, ctx.Session)
	s.mu.Unlock()
	if ss != nil {
		ss.end(ctx.Error)
	}
}

func (s *Server) session(x *gortsplib.ServerSession) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[x]
}

func (s *Server) host(r *base.Request) string {
	if r == nil || r.URL == nil {
		return ""
	}
	return r.URL.Hostname()
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe: the SDP of a
// hub stream, built from its tracks.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	req, key, err := resolve(ctx.Path, ctx.Query, s.host(ctx.Request), s.cfg.Vhost)
	if err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	if err := s.allowPlay(ctx.Conn, ctx.Request, key, req); err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	ps, err := s.playStream(key)
	if err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, ps.stream, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: a publisher.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	ss := s.session(ctx.Session)
	if ss == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	return ss.announce(ctx)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	req, key, err := resolve(ctx.Path, ctx.Query, s.host(ctx.Request), s.cfg.Vhost)
	if err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	if err := s.allowPlay(ctx.Conn, ctx.Request, key, req); err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	ps, err := s.playStream(key)
	if err != nil {
		return &base.Response{StatusCode: status(err)}, nil, nil
	}
	if ss := s.session(ctx.Session); ss != nil {
		ss.setPlay(ps, key, accessRequest(ctx.Conn, ctx.Request, key, rawQuery(req)), req.Redacted())
	}
	s.holdSetup(ctx.Conn)
	return &base.Response{StatusCode: base.StatusOK}, ps.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	ss := s.session(ctx.Session)
	if ss == nil || ss.play == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	establish(ctx.Conn)
	ss.startPlay()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ss := s.session(ctx.Session)
	if ss == nil || ss.pub == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	establish(ctx.Conn)
	ss.record()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost.
func (s *Server) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	if ss := s.session(ctx.Session); ss != nil {
		ss.lost(ctx.Lost)
	}
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError.
func (s *Server) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	if ss := s.session(ctx.Session); ss != nil {
		ss.bad(ctx.Error)
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// a player's queue overflowed (counted by gortsplib; nothing to do).
func (s *Server) OnStreamWriteError(*gortsplib.ServerHandlerOnStreamWriteErrorCtx) {}
