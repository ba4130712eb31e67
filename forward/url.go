package forward

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/redact"
)

// Expand turns a destination into the URL to push key to: "host:port"
// becomes rtmp://host:port/APP/STREAM; an rtmp:// URL gets its [app],
// [stream], [vhost] and [param] placeholders filled ([param] is "?" and
// the publisher's query, or ""), and /STREAM (or /APP/STREAM) appended when
// its path stops short of a stream name. The push is marked with
// HopsParam=hops for the slave's loop guard.
func Expand(dest string, key stream.Key, param string, hops int) (string, error) {
	if param != "" {
		param = "?" + strings.TrimPrefix(param, "?")
	}
	raw := dest
	if !strings.Contains(dest, "://") {
		raw = "rtmp://" + dest + "/[app]/[stream]"
	}
	raw = strings.NewReplacer("[app]", key.App, "[stream]", key.Name, "[vhost]", key.Vhost,
		"[param]", param).Replace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL with its secrets: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("forward destination %q: %w", redact.Text(dest), err)
	}
	if u.Scheme != "rtmp" || u.Hostname() == "" {
		return "", fmt.Errorf("forward destination %q: not host:port or rtmp:// URL", redact.Text(dest))
	}
	path := strings.Trim(u.Path, "/")
	switch strings.Count(path, "/") {
	case 0:
		if path == "" {
			path = key.App + "/" + key.Name
		} else {
			path += "/" + key.Name
		}
	}
	u.Path = "/" + path
	u.RawPath = ""
	q := u.Query()
	q.Set(HopsParam, strconv.Itoa(hops))
	u.RawQuery = q.Encode()
	if u.Port() == "" {
		u.Host += ":1935"
	}
	return u.String(), nil
}

// hostPort is the host:port of an rtmp:// URL ("" if unparsable).
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
