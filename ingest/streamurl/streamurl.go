// Package streamurl parses the stream part of publish and play URLs the way
// SRS users write them: rtmp://HOST[:PORT]/APP[?vhost=V]/STREAM[?vhost=V&k=v],
// and resolves the vhost. RTMP and RTSP ingest share it.
package streamurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/podiumlive/podium/internal/redact"
)

// DefaultVhost is the vhost of a request that names none.
const DefaultVhost = "__defaultVhost__"

// ErrBadName is returned for an app or stream name outside [0-9A-Za-z_-.]
// or with a dot segment; names become file paths (HLS), so this is strict.
var ErrBadName = errors.New("bad name")

// ErrUnknownVhost is returned when a request names a vhost explicitly that
// is not configured.
var ErrUnknownVhost = errors.New("unknown vhost")

// maxName bounds names (they become file names).
const maxName = 128

// Request is a parsed publish or play request.
type Request struct {
	App    string
	Stream string
	// Vhost is the vhost named by ?vhost= (or ?domain=), "" if none.
	Vhost string
	// Host is the host of the tcUrl (or the RTSP URL), without port.
	Host string
	// Params holds every query parameter from the app and stream parts,
	// vhost included.
	Params url.Values
}

// Parse splits an RTMP request: tcURL and app from connect, stream (with
// its query) from publish/play.
func Parse(tcURL, app, stream string) (Request, error) {
	var req Request
	req.Params = url.Values{}
	if tcURL != "" {
		if u, err := url.Parse(tcURL); err == nil {
			req.Host = u.Hostname()
		}
	}
	appName, appQuery, _ := strings.Cut(app, "?")
	streamName, streamQuery, _ := strings.Cut(stream, "?")
	appName = strings.Trim(appName, "/")
	for _, q := range []string{appQuery, streamQuery} {
		if q == "" {
			continue
		}
		vals, err := url.ParseQuery(q)
		if err != nil {
			return req, fmt.Errorf("query %q: %w", q, err)
		}
		for k, v := range vals {
			req.Params[k] = append(req.Params[k], v...)
		}
	}
	if err := ValidName(appName); err != nil {
		return req, fmt.Errorf("app %q: %w", appName, err)
	}
	if err := ValidName(streamName); err != nil {
		return req, fmt.Errorf("stream %q: %w", streamName, err)
	}
	req.App, req.Stream = appName, streamName
	req.Vhost = req.Params.Get("vhost")
	if req.Vhost == "" {
		req.Vhost = req.Params.Get("domain")
	}
	return req, nil
}

// ValidName accepts [0-9A-Za-z_-.]{1,128}, not "." or "..".
func ValidName(s string) error {
	if s == "" {
		return fmt.Errorf("empty: %w", ErrBadName)
	}
	if len(s) > maxName {
		return fmt.Errorf("longer than %d: %w", maxName, ErrBadName)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("dot segment: %w", ErrBadName)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("character %q not in [0-9A-Za-z_-.]: %w", c, ErrBadName)
		}
	}
	return nil
}

// playExts are the extensions a play name may carry and still name the
// stream without them, as SRS resolves it: an SRS edge whose first viewer
// came over HTTP-FLV asks its origin to play "STREAM.flv".
var playExts = []string{".flv", ".m3u8", ".ts"}

// PlayName is the stream a play of name means: name without a trailing
// .flv, .m3u8 or .ts (unless nothing else is left).
func PlayName(name string) string {
	for _, ext := range playExts {
		if base, ok := strings.CutSuffix(name, ext); ok && base != "" && ValidName(base) == nil {
			return base
		}
	}
	return name
}

// ResolveVhost picks the request's vhost: the one named by ?vhost= (which
// must be configured), else the URL's host if it names a configured vhost,
// else DefaultVhost.
func (r Request) ResolveVhost(configured func(name string) bool) (string, error) {
	if r.Vhost != "" {
		if !configured(r.Vhost) {
			return "", fmt.Errorf("vhost %q: %w", r.Vhost, ErrUnknownVhost)
		}
		return r.Vhost, nil
	}
	if r.Host != "" && net.ParseIP(r.Host) == nil && configured(r.Host) {
		return r.Host, nil
	}
	return DefaultVhost, nil
}

// IsSecret reports whether a query parameter carries a secret: its value
// is never shown in stats, logs or hooks' descriptions.
func IsSecret(name string) bool { return redact.Param(name) }

// Redacted returns the query with secret values replaced by "xxx".
func (r Request) Redacted() string {
	if len(r.Params) == 0 {
		return ""
	}
	v := url.Values{}
	for k, vals := range r.Params {
		if IsSecret(k) {
			v[k] = []string{"xxx"}
			continue
		}
		v[k] = vals
	}
	return v.Encode()
}
