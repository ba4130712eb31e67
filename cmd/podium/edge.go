package main

import (
	"log/slog"
	"net/url"
	"sync/atomic"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/ingest/edge"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// newEdge makes the pulls of the edge vhosts (cluster.mode remote) and,
// on a member of a group (cluster.group), of its local vhosts: a play of
// a class another member owns pulls it from that member (or, with
// cluster.redirect, an RTMP play is sent there). The box-wide origin
// backoff is the longest any edge vhost asks for. dir is the registry's
// groups (nil: no cluster; group origins then match nothing).
func newEdge(cfg *configs.Config, hub *stream.Hub, limits rtmpproto.Limits, dir groups.Directory, log *slog.Logger) *edge.Edge {
	var cfgs []edge.Config
	var opts edge.Options
	for _, v := range cfg.Vhosts {
		if c := groupPull(cfg, &v); c != nil {
			cfgs = append(cfgs, *c)
			continue
		}
		if !v.Edge() {
			continue
		}
		c := v.Cluster
		ec := edge.Config{
			Vhost:          v.Name,
			OriginVhost:    c.Vhost,
			ConnectTimeout: c.ConnectTimeout.Std(),
			IdleTimeout:    c.IdleTimeout.Std(),
			IdleClose:      c.IdleClose.Std(),
		}
		for _, o := range c.Origin {
			if g, ok := configs.GroupName(o); ok {
				ec.Groups = append(ec.Groups, g)
			} else {
				ec.Origins = append(ec.Origins, o)
			}
		}
		cfgs = append(cfgs, ec)
		opts.OriginBackoff = max(opts.OriginBackoff, c.OriginBackoff.Std())
	}
	opts.Limits = limits
	opts.Directory = dir
	return edge.New(cfgs, hub, opts, log)
}

// groupPull is the implicit pull of a group member's local vhost v: from
// the member that owns the class, never refusing (nil when the box is in
// no group or v is an edge vhost). A vhost that transcodes only redirects.
func groupPull(cfg *configs.Config, v *configs.Vhost) *edge.Config {
	if cfg.Cluster == nil || cfg.Cluster.Group == "" || v.Edge() {
		return nil
	}
	c := &edge.Config{Vhost: v.Name, Groups: []string{cfg.Cluster.Group}, OwnerOnly: true,
		Redirect: cfg.Cluster.Redirect, RedirectOnly: v.Transcode != nil}
	if v.Cluster != nil {
		c.ConnectTimeout, c.IdleTimeout, c.IdleClose = v.Cluster.ConnectTimeout.Std(), v.Cluster.IdleTimeout.Std(),
			v.Cluster.IdleClose.Std()
	}
	return c
}

// edgeVhost reports whether a vhost pulls its streams on demand: HLS
// playlist requests there are demand (and wait for the first segment).
func edgeVhost(cfg *configs.Config) func(string) bool {
	return func(name string) bool {
		v := cfg.Vhost(name)
		if v == nil {
			return false
		}
		if c := groupPull(cfg, v); c != nil {
			return !c.RedirectOnly
		}
		return v.Edge()
	}
}

// edgeLate lets the RTMP server, built before the edge, ask it for an
// RTMP 302 (cluster.redirect) and make a pull give way to a publish.
type edgeLate struct{ e atomic.Pointer[edge.Edge] }

func (l *edgeLate) redirect(key stream.Key, params url.Values) string {
	if e := l.e.Load(); e != nil {
		return e.Redirect(key, params)
	}
	return ""
}

func (l *edgeLate) yield(key stream.Key) bool {
	if e := l.e.Load(); e != nil {
		return e.Yield(key)
	}
	return false
}
