// Package edge pulls a stream from its origins while someone watches it:
// a play (RTMP, HTTP-FLV, an HLS playlist) of a stream of an edge vhost
// that is not live here makes the hub emit stream.EventDemand; the edge
// starts one pull for all the stream's viewers, publishes what it pulls as
// an ordinary hub stream (so viewers, HLS, forward, hooks and the API work
// on it unchanged), fails over between origins without the viewers
// noticing, and stops idle_close after the last viewer left.
package edge

import (
	"context"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
	"github.com/podiumlive/podium/rtmp"
)

// Protocol is the ClientInfo.Protocol of a pulled stream's publisher.
const Protocol = "edge"

// Config is one edge vhost.
type Config struct {
	// Vhost is the edge vhost; OriginVhost the vhost to pull from ("":
	// the same name).
	Vhost       string
	OriginVhost string
	// Origins are "host:port" or rtmp:// URLs with [app] [stream] [vhost]
	// [param] placeholders.
	Origins []string
	// Groups name groups of the registry whose members are origins too
	// (an origin entry "group:NAME"); see group.go.
	Groups []string
	// OwnerOnly makes the vhost a master's: a play of a stream it does not
	// have pulls it from the group member that owns it, only; while nobody
	// does, the pull waits (the relay may be moving the class here) and
	// never refuses the players (their play wait does). A publish of the
	// stream here takes over (Yield).
	OwnerOnly bool
	// Redirect (OwnerOnly vhosts): an RTMP play is answered with a 302 to
	// the owner instead of pulling (see Redirect). RedirectOnly: the vhost
	// never pulls (it transcodes: pulling the original would encode again
	// what the owner encodes), it only redirects.
	Redirect     bool
	RedirectOnly bool
	// ConnectTimeout bounds connect and play of one origin (default 2 s);
	// IdleTimeout is how long without media makes the pull try the next
	// origin (default 3 s); IdleClose is how long after the last viewer
	// left the pull stops (default 10 s).
	ConnectTimeout time.Duration
	IdleTimeout    time.Duration
	IdleClose      time.Duration
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.ConnectTimeout, 2*time.Second)
	set(&c.IdleTimeout, 3*time.Second)
	set(&c.IdleClose, 10*time.Second)
}

// Options apply to every edge vhost of the box.
type Options struct {
	// OriginBackoff is how long a failed origin is skipped by every
	// stream (default 10 s).
	OriginBackoff time.Duration
	// Limits bound what an origin may make a pull parse.
	Limits rtmp.Limits
	// Tick is how often a pull checks for viewers (default 250 ms).
	Tick time.Duration
	// Directory resolves the origins that name a group (nil: the box is
	// in no cluster; such origins match nothing).
	Directory groups.Directory
}

// Counters are the box's pull totals, for /metrics.
type Counters struct {
	Pulls          uint64 // pulls started (streams pulled on demand)
	Failovers      uint64 // switches to another origin
	UpstreamErrors uint64 // origin sessions that failed or broke
}

// Edge runs the pulls of the edge vhosts.
type Edge struct {
	hub     *stream.Hub
	vhosts  map[string]*Config
	opts    Options
	log     *slog.Logger
	origins *origins

	mu      sync.Mutex
	ctx     context.Context
	pulls   map[stream.Key]*pull
	changed chan struct{} // closed at the directory's next change
	wg      sync.WaitGroup

	nPulls, nFailovers, nErrors atomic.Uint64
}

// New prepares the edge vhosts; Start listens for demand.
func New(cfgs []Config, hub *stream.Hub, opts Options, log *slog.Logger) *Edge {
	if opts.OriginBackoff <= 0 {
		opts.OriginBackoff = 10 * time.Second
	}
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{hub: hub, vhosts: map[string]*Config{}, opts: opts, log: log,
		origins: newOrigins(opts.OriginBackoff), pulls: map[stream.Key]*pull{}, changed: make(chan struct{})}
	for _, c := range cfgs {
		c.defaults()
		e.vhosts[c.Vhost] = &c
	}
	return e
}

// Start pulls on demand until ctx ends.
func (e *Edge) Start(ctx context.Context) {
	if len(e.vhosts) == 0 {
		return
	}
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	var grouped []string
	for _, c := range e.vhosts {
		for _, g := range c.Groups {
			grouped = append(grouped, c.Vhost+": group:"+g)
		}
	}
	if len(grouped) > 0 {
		if e.opts.Directory == nil {
			sort.Strings(grouped)
			e.log.Warn("edge origins name a group but this box is in no cluster: they match nothing",
				"origins", grouped)
		} else {
			e.opts.Directory.OnChange(e.directoryChanged)
		}
	}
	e.hub.Listen(func(ev stream.Event) {
		if ev.Type == stream.EventDemand {
			e.demand(ev.Key)
		}
	})
}

// Wait waits for every pull to stop (after Start's ctx ended).
func (e *Edge) Wait() { e.wg.Wait() }

// Serves reports whether vhost is an edge vhost.
func (e *Edge) Serves(vhost string) bool { return e.vhosts[vhost] != nil }

// demand starts the pull of key, or tells the running one someone wants
// it. It runs inside the hub's emit: it must not block.
func (e *Edge) demand(key stream.Key) {
	cfg := e.vhosts[key.Vhost]
	if cfg == nil || cfg.RedirectOnly {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil || e.ctx.Err() != nil {
		return
	}
	if p := e.pulls[key]; p != nil {
		p.wanted()
		return
	}
	p := newPull(e, key, cfg)
	ctx, cancel := context.WithCancelCause(e.ctx)
	p.cancel = cancel
	e.pulls[key] = p
	e.nPulls.Add(1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(p.done)
		p.run(ctx)
	}()
}

// remove forgets p (if it is still key's pull): a later demand starts a
// new one.
func (e *Edge) remove(p *pull) {
	e.mu.Lock()
	if e.pulls[p.key] == p {
		delete(e.pulls, p.key)
	}
	e.mu.Unlock()
}

// Counters returns the pull totals.
func (e *Edge) Counters() Counters {
	return Counters{Pulls: e.nPulls.Load(), Failovers: e.nFailovers.Load(), UpstreamErrors: e.nErrors.Load()}
}

// Upstream states.
const (
	StateConnecting = "connecting" // dialing or waiting for the first media of an origin
	StatePlaying    = "playing"
	StateStopped    = "stopped"
)

// Upstream is a pulled stream's link to its origin, for the API.
type Upstream struct {
	Origin    string    `json:"origin"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Switches  uint64    `json:"switches"`
	LastError string    `json:"last_error,omitempty"`
}

// Upstream returns the upstream of the pulled stream key.
func (e *Edge) Upstream(key stream.Key) (Upstream, bool) {
	e.mu.Lock()
	p := e.pulls[key]
	e.mu.Unlock()
	if p == nil {
		return Upstream{}, false
	}
	return p.snapshot(), true
}

// Pulls lists the running pulls, by key.
func (e *Edge) Pulls() map[stream.Key]Upstream {
	e.mu.Lock()
	ps := make([]*pull, 0, len(e.pulls))
	for _, p := range e.pulls {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	out := make(map[stream.Key]Upstream, len(ps))
	for _, p := range ps {
		out[p.key] = p.snapshot()
	}
	return out
}

// Origins lists the origins of every edge vhost and their health, then
// the group members the box pulled from.
func (e *Edge) Origins() []OriginStats {
	names := make([]string, 0, len(e.vhosts))
	for n := range e.vhosts {
		names = append(names, n)
	}
	sort.Strings(names)
	var list []string
	seen := map[string]bool{}
	for _, n := range names {
		for _, o := range e.vhosts[n].Origins {
			if !seen[o] {
				seen[o] = true
				list = append(list, o)
			}
		}
	}
	for _, o := range e.origins.known() {
		if !seen[o] {
			seen[o] = true
			list = append(list, o)
		}
	}
	return e.origins.stats(list)
}

// shown is an origin entry without its query (which may carry secrets).
func shown(origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" {
		return origin
	}
	u.RawQuery = ""
	u.User = nil
	return u.String()
}

// Enabled reports whether the box has an edge vhost.
func (e *Edge) Enabled() bool { return len(e.vhosts) > 0 }
