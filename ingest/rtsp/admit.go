package rtsp

// Admission: RTSP publishers and players go through the same access.Guard
// as RTMP ones; this file builds the guard's request and maps refusals and
// resolution errors to RTSP status codes.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// accessRequest describes a request for access.Guard.
func accessRequest(sc *gortsplib.ServerConn, r *base.Request, key stream.Key, query string) access.Request {
	ip := ""
	if a, ok := sc.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	tc := ""
	if r != nil && r.URL != nil {
		u := *r.URL
		u.User = nil
		u.RawQuery = ""
		tc = u.String()
	}
	return access.Request{
		Protocol: Protocol, ClientID: fmt.Sprintf("%p", sc), IP: ip,
		Vhost: key.Vhost, App: key.App, Stream: key.Name, Param: query, TcURL: tc,
	}
}

// status maps an error of resolving or gating a request to an RTSP status.
func status(err error) base.StatusCode {
	switch {
	case errors.Is(err, streamurl.ErrBadName), errors.Is(err, streamurl.ErrUnknownVhost):
		return base.StatusBadRequest
	case errors.Is(err, stream.ErrNotFound):
		return base.StatusNotFound
	case errors.Is(err, stream.ErrAlreadyPublishing):
		return base.StatusBadRequest
	case errors.Is(err, access.ErrDenied):
		return base.StatusForbidden
	}
	return base.StatusServiceUnavailable
}

// allowPlay asks the guard once per connection and stream.
func (s *Server) allowPlay(sc *gortsplib.ServerConn, r *base.Request, key stream.Key, req streamurl.Request) error {
	cs := s.conn(sc)
	s.mu.Lock()
	ok := cs != nil && cs.allowed[key]
	s.mu.Unlock()
	if ok {
		return nil
	}
	gctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := s.cfg.Guard.Play(gctx, accessRequest(sc, r, key, rawQuery(req))); err != nil {
		s.log.Info("rtsp play denied", "remote", sc.NetConn().RemoteAddr().String(), "stream", key.String(), "reason", err.Error())
		return fmt.Errorf("play %s: %w", key, err)
	}
	if cs != nil {
		s.mu.Lock()
		if cs.allowed == nil {
			cs.allowed = map[stream.Key]bool{}
		}
		cs.allowed[key] = true
		s.mu.Unlock()
	}
	return nil
}

func rawQuery(req streamurl.Request) string {
	if len(req.Params) == 0 {
		return ""
	}
	return req.Params.Encode()
}
