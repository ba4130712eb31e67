package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/internal/backoff"
)

// Config is the box's cluster settings, defaults resolved (see cmd).
type Config struct {
	Node      string
	Line      string
	PublicURL string // http://host:port, no trailing slash
	Serve     bool
	// Pulls: this box is an edge that pulls any stream on demand.
	Pulls      bool
	MaxViewers int
	Heartbeat  time.Duration
	PlaySecret string
	// SessionTTL is how long a play session lasts (default 4h).
	SessionTTL time.Duration
	// Backend names the registry in logs ("memory", "redis 127.0.0.1:6379").
	Backend string
	// ViewTTL lets allocations within it of the last registry read reuse
	// that read (with this box's own allocations since counted on it):
	// one Redis round trip per allocation instead of two. 0 reads the
	// registry on every allocation.
	ViewTTL time.Duration
	// Group is the group of origins this box is in ("" = none): each
	// heartbeat claims its streams in the registry. RTMP is the host:port
	// other boxes reach this box's RTMP at.
	Group string
	RTMP  string
}

// DefaultViewTTL is the ViewTTL a box runs with: another box's
// allocations show in this one's choices within 100 ms.
const DefaultViewTTL = 100 * time.Millisecond

// Local is the box's own state, read once per heartbeat.
type Local struct {
	Viewers   int
	EgressBps int64
	CPU       float64
	Streams   []Stream
	Draining  bool
	// Transcodes is how many streams the box runs a transcode for.
	Transcodes int
}

// Cluster is the cluster stage of one box: its heartbeat and the
// allocator.
type Cluster struct {
	reg      Registry
	cfg      Config
	local    func() Local
	log      *slog.Logger
	dec      *decoder
	instance string
	// fallback keeps this box's sessions when the registry cannot: a
	// switch on this box still works while Redis is down.
	fallback *Memory

	mu      sync.Mutex
	view    []view // the last good read of the registry
	viewAt  time.Time
	pending map[string]int64 // allocations counted on the stale view
	status  string           // "up", "taken", or the last error class
	lastErr string
	rng     *mrand.Rand
	// viewers is what the last announced heartbeat reported (heartbeat
	// goroutine only).
	viewers int
	// self is this box's entry as of its last heartbeat: while the
	// registry cannot be read, the stale view has this box as it is now
	// (a box whose Redis is down from the start still serves its own
	// streams).
	self *Node

	// The groups: the Directory's snapshot (see directory.go), its
	// callbacks, the move log, and the claims this box holds (heartbeat
	// goroutine only).
	groups   atomic.Pointer[groupsView]
	gmu      sync.Mutex
	onChange []func()
	moves    *moveLog
	claimed  map[string]bool
	nudge    chan struct{}
}

// reserveFor is how long an allocation counts against a node when no
// viewer shows up for it: the meter sees a viewer within its window, so
// after three of those the student is not coming.
const reserveFor = 30 * time.Second

// New builds the stage. local is read each heartbeat (from the
// heartbeat's goroutine).
func New(reg Registry, cfg Config, local func() Local, log *slog.Logger) *Cluster {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 4 * time.Hour
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cluster{
		reg: reg, cfg: cfg, local: local, log: log, dec: newDecoder(log),
		instance: randomID(8), fallback: NewMemory(nil), pending: map[string]int64{},
		rng:   mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())),
		moves: newMoveLog(), claimed: map[string]bool{}, nudge: make(chan struct{}, 1),
	}
}

// Config returns the resolved settings.
func (c *Cluster) Config() Config { return c.cfg }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ttl is how long an entry lives: three heartbeats.
func (c *Cluster) ttl() time.Duration { return 3 * c.cfg.Heartbeat }

// Run writes the heartbeat until ctx ends, then removes this box's entry.
// Failures retry with backoff capped at half a heartbeat, so a Redis that
// comes back empty has this box again within one heartbeat (the write
// included).
func (c *Cluster) Run(ctx context.Context) {
	hb := c.cfg.Heartbeat
	b := backoff.Backoff{Min: max(hb/8, 50*time.Millisecond), Max: max(hb/2, 50*time.Millisecond), Jitter: 0.2}
	for {
		wait := hb
		if err := c.Beat(ctx); err != nil {
			wait = b.Next()
		} else {
			b.Reset()
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			c.releaseAll(lctx)
			_ = c.reg.Leave(lctx, c.cfg.Node, c.instance)
			cancel()
			return
		case <-time.After(wait):
		case <-c.nudge:
		}
	}
}

// node is this box's entry now.
func (c *Cluster) node(l Local) Node {
	state := StateServing
	if l.Draining {
		state = StateDraining
	}
	streams := l.Streams
	if streams == nil {
		streams = []Stream{}
	}
	return Node{
		V: WireVersion, ID: c.cfg.Node, Kind: KindPodium, Line: c.cfg.Line, URL: c.cfg.PublicURL,
		Serve: c.cfg.Serve, State: state, Pulls: c.cfg.Pulls, MaxViewers: c.cfg.MaxViewers,
		Viewers: l.Viewers, EgressBps: l.EgressBps, CPU: l.CPU, Streams: streams,
		Group: c.cfg.Group, RTMP: c.cfg.RTMP, Transcodes: l.Transcodes,
		HeartbeatMs: c.cfg.Heartbeat.Milliseconds(), At: time.Now().UnixMilli(),
	}
}

// Beat writes one heartbeat and refreshes the view. Exported for tests
// that step the clock by hand.
func (c *Cluster) Beat(ctx context.Context) error {
	l := c.local()
	n := c.node(l)
	c.mu.Lock()
	c.self = &n
	c.mu.Unlock()
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Heartbeat)
	defer cancel()
	// Each viewer that appeared since the last beat replaces one counted
	// allocation.
	joined := int64(max(0, l.Viewers-c.viewers))
	err = c.reg.Announce(actx, n.ID, c.instance, b, c.ttl(), joined)
	if err == nil {
		c.viewers = l.Viewers
	}
	if errors.Is(err, ErrNodeTaken) {
		c.setStatus("taken", nil)
		_, _ = c.refresh(actx) // the allocator still answers
		return nil             // not an outage: retry at the heartbeat
	}
	if err != nil {
		c.setStatus("down", err)
		return err
	}
	views, err := c.refresh(actx)
	if err == nil {
		err = c.groupRound(actx, n, views)
	}
	if err != nil {
		c.setStatus("down", err)
		return err
	}
	c.setStatus("up", nil)
	return nil
}

// setStatus logs a change of the registry's state, once per change.
func (c *Cluster) setStatus(status string, err error) {
	msg := ""
	if err != nil {
		msg = errClass(err)
	}
	c.mu.Lock()
	changed := status != c.status || msg != c.lastErr
	first := c.status == ""
	c.status, c.lastErr = status, msg
	c.mu.Unlock()
	if !changed {
		return
	}
	switch status {
	case "up":
		if first {
			c.log.Info("cluster registry up", "registry", c.cfg.Backend, "node", c.cfg.Node, "line", c.cfg.Line, "url", c.cfg.PublicURL)
		} else {
			c.log.Info("cluster registry back: this box announced again", "registry", c.cfg.Backend, "node", c.cfg.Node)
		}
	case "taken":
		c.log.Error("cluster.node is already used by another box: this box is not announced (allocation still answers); give each box its own cluster.node",
			"node", c.cfg.Node, "registry", c.cfg.Backend)
	default:
		c.log.Warn("cluster registry unreachable: media keeps flowing, allocation answers from the last view, retrying",
			"registry", c.cfg.Backend, "err", msg)
	}
}

// errClass is the part of a registry error worth a log line: timeouts
// differ in their numbers, which must not make a new line each time.
func errClass(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "i/o timeout"), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "WRONGPASS"), strings.Contains(s, "NOAUTH"):
		return "authentication failed (check the password in cluster.redis)"
	case strings.Contains(s, "OOM"):
		return "redis is out of memory (OOM)"
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// refresh reads the registry into the view.
func (c *Cluster) refresh(ctx context.Context) ([]view, error) {
	entries, err := c.reg.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	views := c.dec.decodeAll(entries)
	c.mu.Lock()
	c.view, c.viewAt = views, time.Now()
	clear(c.pending)
	c.mu.Unlock()
	return views, nil
}

// current returns a fresh view, or the last one marked stale when the
// registry cannot answer now.
func (c *Cluster) current(ctx context.Context) ([]view, bool) {
	c.mu.Lock()
	up := c.status == "up" || c.status == "taken"
	fresh := c.cfg.ViewTTL > 0 && time.Since(c.viewAt) < c.cfg.ViewTTL
	c.mu.Unlock()
	if up && fresh {
		return c.cached(), false
	}
	if up {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		v, err := c.refresh(rctx)
		cancel()
		if err == nil {
			return v, false
		}
	}
	return c.withSelf(c.cached()), true
}

// withSelf puts this box's own latest entry into a stale view.
func (c *Cluster) withSelf(views []view) []view {
	c.mu.Lock()
	self := c.self
	taken := c.status == "taken"
	c.mu.Unlock()
	if self == nil || taken {
		return views
	}
	v := view{Node: *self}
	for i := range views {
		if views[i].ID == self.ID {
			v.Reserved = views[i].Reserved
			views[i] = v
			return views
		}
	}
	return append(views, v)
}

// cached is the last read, with this box's allocations since counted and
// the heartbeat ages moved on.
func (c *Cluster) cached() []view {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]view, len(c.view))
	since := time.Since(c.viewAt)
	for i, v := range c.view {
		v.Reserved += c.pending[v.ID]
		v.Age += since
		out[i] = v
	}
	return out
}

// Status is the registry's state as the API shows it.
type Status struct {
	Registry string    `json:"registry"`
	Node     string    `json:"node"`
	State    string    `json:"state"` // up | down | taken
	Error    string    `json:"error,omitempty"`
	ViewAt   time.Time `json:"view_at"`
}

// Status returns the registry's state.
func (c *Cluster) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Registry: c.cfg.Backend, Node: c.cfg.Node, State: c.status, Error: c.lastErr, ViewAt: c.viewAt}
}
