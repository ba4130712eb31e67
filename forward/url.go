package forward

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// Expand turns a destination into the URL to push key to: "host:port"
// becomes rtmp://host:port/APP/STREAM; an rtmp:// URL gets its [app],
// [stream], [vhost] and [param] placeholders filled ([param] is "?" and
// the publisher's query, or ""), and /STREAM (or /APP/STREAM) appended when
// its path stops short of a stream name. The push is marked with
// HopsParam=hops for the slave's loop guard.
func Expand(dest string, key stream.Key, param string, hops int) (string, error) {
	u, err := streamurl.Destination(dest, key.App, key.Name, key.Vhost, param)
	if err != nil {
		return "", fmt.Errorf("forward %w", err)
	}
	q := u.Query()
	q.Set(HopsParam, strconv.Itoa(hops))
	u.RawQuery = q.Encode()
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
