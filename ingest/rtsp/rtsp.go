// Package rtsp is Podium's RTSP edge, on gortsplib: a server where
// encoders publish (ANNOUNCE/RECORD) into the hub and players play any hub
// stream, and the pull sources that bring IP cameras into the hub as if
// they had published over RTMP. RTP is converted to the hub's access units
// (AVCC H.264/H.265 with their decoder configuration records, raw AAC,
// G.711, Opus, linear PCM) on the way in, and back on the way out.
package rtsp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// Protocol is the name RTSP clients carry in stream.ClientInfo and
// access.Request.
const Protocol = "rtsp"

func randUint32() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("random: %w", err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// parsePath splits an RTSP request path ("/APP/STREAM") and query into a
// streamurl.Request (names validated, ?vhost= read).
func parsePath(path, query, host string) (streamurl.Request, error) {
	p := strings.TrimPrefix(path, "/")
	p = strings.TrimSuffix(p, "/")
	app, name, ok := strings.Cut(p, "/")
	if !ok {
		return streamurl.Request{}, fmt.Errorf("path %q is not /APP/STREAM: %w", path, streamurl.ErrBadName)
	}
	if query != "" {
		name += "?" + query
	}
	tc := ""
	if host != "" {
		tc = "rtsp://" + host + "/"
	}
	return streamurl.Parse(tc, app, name)
}

// resolve parses a path and resolves its vhost.
func resolve(path, query, host string, vhost func(string) bool) (streamurl.Request, stream.Key, error) {
	req, err := parsePath(path, query, host)
	if err != nil {
		return req, stream.Key{}, err
	}
	v, err := req.ResolveVhost(vhost)
	if err != nil {
		return req, stream.Key{}, err
	}
	return req, stream.Key{Vhost: v, App: req.App, Name: req.Stream}, nil
}

// benign reports whether err is an ordinary end of a connection or
// session rather than bad input.
func benign(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var (
		e1 liberrors.ErrServerTerminated
		e2 liberrors.ErrServerSessionTornDown
		e3 liberrors.ErrServerSessionNotFound
		e4 liberrors.ErrServerSessionNotInUse
	)
	return errors.As(err, &e1) || errors.As(err, &e2) || errors.As(err, &e3) || errors.As(err, &e4) ||
		strings.Contains(err.Error(), "connection reset by peer")
}

func reason(err error) string {
	if benign(err) {
		return "closed"
	}
	return err.Error()
}

// redactor hides the credentials of a source URL in anything logged or
// shown: the URL itself and error texts that might quote it.
type redactor struct {
	secrets []string
	shown   string
}

func newRedactor(raw string) redactor {
	r := redactor{shown: "(unparsable url)"}
	u, err := url.Parse(raw)
	if err != nil {
		return r
	}
	if u.User != nil {
		if s := u.User.String(); s != "" {
			r.secrets = append(r.secrets, s)
		}
		if p, ok := u.User.Password(); ok && p != "" {
			r.secrets = append(r.secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
		u.User = url.User("xxx")
	}
	q := u.Query()
	for k, vs := range q {
		if streamurl.IsSecret(k) {
			for _, v := range vs {
				if v != "" {
					r.secrets = append(r.secrets, v)
				}
			}
			q[k] = []string{"xxx"}
		}
	}
	u.RawQuery = q.Encode()
	r.shown = u.String()
	return r
}

// text removes every secret from s.
func (r redactor) text(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 2 {
			s = strings.ReplaceAll(s, sec, "xxx")
		}
	}
	return s
}
