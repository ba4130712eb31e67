package streamurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/podiumlive/podium/internal/redact"
)

// Destination turns an SRS-style remote server entry into the rtmp:// URL
// of one stream there: "host:port" becomes rtmp://host:port/APP/STREAM; an
// rtmp:// URL gets its [app], [stream], [vhost] and [param] placeholders
// filled ([param] is "?" and param, or ""), and /STREAM (or /APP/STREAM)
// appended when its path stops short of a stream name. Forward's
// destinations and an edge's origins are written this way.
func Destination(dest, app, stream, vhost, param string) (*url.URL, error) {
	if param != "" {
		param = "?" + strings.TrimPrefix(param, "?")
	}
	raw := dest
	if !strings.Contains(dest, "://") {
		raw = "rtmp://" + dest + "/[app]/[stream]"
	}
	raw = strings.NewReplacer("[app]", app, "[stream]", stream, "[vhost]", vhost,
		"[param]", param).Replace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL with its secrets: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("destination %q: %w", redact.Text(dest), err)
	}
	if u.Scheme != "rtmp" || u.Hostname() == "" {
		return nil, fmt.Errorf("destination %q: not host:port or rtmp:// URL", redact.Text(dest))
	}
	path := strings.Trim(u.Path, "/")
	switch strings.Count(path, "/") {
	case 0:
		if path == "" {
			path = app + "/" + stream
		} else {
			path += "/" + stream
		}
	}
	u.Path = "/" + path
	u.RawPath = ""
	if u.Port() == "" {
		u.Host += ":1935"
	}
	return u, nil
}
