package main

import (
	"log/slog"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/ingest/edge"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// newEdge makes the pulls of the edge vhosts (cluster.mode remote). The
// box-wide origin backoff is the longest any edge vhost asks for.
func newEdge(cfg *configs.Config, hub *stream.Hub, limits rtmpproto.Limits, log *slog.Logger) *edge.Edge {
	var cfgs []edge.Config
	var opts edge.Options
	for _, v := range cfg.Vhosts {
		if !v.Edge() {
			continue
		}
		c := v.Cluster
		cfgs = append(cfgs, edge.Config{
			Vhost:          v.Name,
			OriginVhost:    c.Vhost,
			Origins:        c.Origin,
			ConnectTimeout: c.ConnectTimeout.Std(),
			IdleTimeout:    c.IdleTimeout.Std(),
			IdleClose:      c.IdleClose.Std(),
		})
		opts.OriginBackoff = max(opts.OriginBackoff, c.OriginBackoff.Std())
	}
	opts.Limits = limits
	return edge.New(cfgs, hub, opts, log)
}

// edgeVhost reports whether a vhost pulls its streams on demand: HLS
// playlist requests there are demand (and wait for the first segment).
func edgeVhost(cfg *configs.Config) func(string) bool {
	return func(name string) bool {
		v := cfg.Vhost(name)
		return v != nil && v.Edge()
	}
}
