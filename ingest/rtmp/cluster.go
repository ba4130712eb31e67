package rtmp

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/q191201771/lal/pkg/base"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// What the server does for the origin cluster (the edge's pulls between
// group members, issue 18): a play may ask not to wait, a master may
// answer a play with an RTMP 302 to the member that has the stream, and a
// publish takes a stream over from a pull.

// noWaitParam on a play (the edge's pull from a group member:
// edge.NoWaitParam, the names must match) answers "not found" at once when
// the stream is not live, instead of waiting PlayWait (and without
// emitting demand, so this box does not pull it for the asker: no chains
// between members).
const noWaitParam = "podium_nowait"

// takeNoWait takes noWaitParam out of req's params (it reaches neither
// stats nor hooks) and reports whether it was set.
func takeNoWait(req *streamurl.Request) bool {
	set := req.Params.Get(noWaitParam) != ""
	req.Params.Del(noWaitParam)
	return set
}

// redirectPlay answers a play command with an RTMP 302 when
// Config.Redirect names another box for its stream. It runs on the
// command, before lal answers the play with NetStream.Play.Start (SRS too
// redirects before it starts a play), so the player sees the 302 as the
// play's answer; the connection is then shut for writing, and lal's
// answer fails and ends it. Access is the target's business: the player
// plays there.
func (c *conn) redirectPlay(cmd flv.Command) bool {
	if c.srv == nil || c.sess == nil || c.srv.cfg.Redirect == nil || len(cmd.Args) < 2 {
		return false
	}
	raw, _ := cmd.Args[1].(string)
	name, query, _ := strings.Cut(raw, "?")
	name = streamurl.PlayName(name)
	if query != "" {
		name += "?" + query
	}
	req, err := streamurl.Parse(c.tcURL, c.sess.AppName(), name)
	if err != nil || takeNoWait(&req) {
		return false
	}
	vhost, err := req.ResolveVhost(c.srv.cfg.Vhost)
	if err != nil {
		return false
	}
	key := stream.Key{Vhost: vhost, App: req.App, Name: req.Stream}
	to := c.srv.cfg.Redirect(key, req.Params)
	if to == "" {
		return false
	}
	c.redirect(to)
	c.log.Info("rtmp play redirected", "stream", key.String(), "to", withoutQuery(to))
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		c.close()
	}
	return true
}

// redirect sends an SRS-style RTMP 302 (SrsRtmpServer::redirect): an
// onStatus error NetConnection.Connect.Rejected whose ex carries code 302
// and the URL to play instead.
func (c *conn) redirect(to string) {
	body := flv.CommandBody("onStatus", 0, nil, map[string]any{
		"level": "error", "code": "NetConnection.Connect.Rejected", "description": "RTMP 302 Redirect",
		"ex": map[string]any{"code": float64(302), "redirect": to},
	})
	_ = c.write(rtmpproto.AppendMessage(nil, rtmpproto.CsidData, base.RtmpTypeIdCommandMessageAmf0, 0,
		rtmpproto.ChunkSize, nil, body))
}

// publish makes key live for this connection; when a pull holds the key
// and gives way (Config.Yield: the class moved to this master while it
// pulled it from another member), it publishes again.
func (c *conn) publish(key stream.Key, info stream.ClientInfo) (*stream.Publisher, error) {
	pub, err := c.srv.hub.Publish(key, info)
	if errors.Is(err, stream.ErrAlreadyPublishing) && c.srv.cfg.Yield != nil && c.srv.cfg.Yield(key) {
		c.log.Info("rtmp publish takes over a pulled stream", "stream", key.String())
		pub, err = c.srv.hub.Publish(key, info)
	}
	return pub, err
}

// withoutQuery is a URL for logs: its query may carry a player's token.
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
