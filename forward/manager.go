package forward

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/stream"
)

// Manager starts the handlers of every stream published on a vhost that
// has `forward`, and stops them when the stream ends or the config changes.
type Manager struct {
	hub  *stream.Hub
	opts Options
	log  *slog.Logger
	// picker chooses group members; nil without a cluster.
	picker *picker

	mu      sync.Mutex
	ctx     context.Context
	vhosts  map[string]Settings
	streams map[uint64]*fwdStream // by stream id
	wg      sync.WaitGroup
}

// fwdStream is the forward state of one live stream.
type fwdStream struct {
	st       *stream.Stream
	set      Settings
	log      *slog.Logger
	gone     chan struct{}       // closed on unpublish (or when the vhost stops forwarding)
	handlers map[string]*handler // by URL, or by group:NAME
	// held: another member of this box's group owns the stream, so this
	// box does not forward it (the claim's loser).
	held bool
	// backend: the hook's answer replaces the static list once it came.
	hookCancel context.CancelFunc
	hookURLs   []string
	hookOK     bool
}

// NewManager makes a manager for the given per-vhost settings.
func NewManager(hub *stream.Hub, vhosts map[string]Settings, opts Options, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		hub: hub, opts: opts.withDefaults(), log: log,
		vhosts: vhosts, streams: make(map[uint64]*fwdStream),
	}
	if opts.Groups != nil {
		m.picker = newPicker(opts.Groups, m.opts.MemberBackoff)
	}
	return m
}

// Start listens for publishes until ctx ends. Handlers flush and close
// when their stream ends or ctx ends; Wait waits for them.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	if m.picker != nil {
		m.opts.Groups.OnChange(m.onGroupsChange)
	}
	m.hub.Listen(m.onEvent)
	// Streams already live (a manager started late) are picked up too.
	m.mu.Lock()
	for _, st := range m.hub.Streams() {
		m.startLocked(st, false)
	}
	m.mu.Unlock()
}

// Wait returns when every handler has ended (after the Start context ends).
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) onEvent(ev stream.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.Type {
	case stream.EventPublish:
		m.startLocked(ev.Stream, true)
	case stream.EventUnpublish:
		if fs := m.streams[ev.Stream.ID()]; fs != nil {
			m.endLocked(fs)
		}
	}
}

// startLocked begins forwarding st if its vhost forwards it. inEvent: the
// call is inside the publish event, so readers subscribed now miss nothing.
func (m *Manager) startLocked(st *stream.Stream, inEvent bool) {
	if m.ctx == nil || m.ctx.Err() != nil || m.streams[st.ID()] != nil {
		return
	}
	set, ok := m.vhosts[st.Key().Vhost]
	if !ok {
		return
	}
	log := m.log.With("stream", st.Key().String())
	if hops := st.Publisher().Forwarded; hops >= set.HopLimit {
		log.Info("forward skipped: stream arrived by forward", "hops", hops, "hop_limit", set.HopLimit)
		return
	}
	fs := &fwdStream{st: st, set: set, log: log, gone: make(chan struct{}), handlers: make(map[string]*handler)}
	m.streams[st.ID()] = fs
	if !m.ownsLocked(fs) {
		fs.held = true
		log.Info("forward held: another member of the group owns the stream")
	}
	m.applyLocked(fs, m.urlsLocked(fs), inEvent)
	if set.Backend != "" {
		m.startHookLocked(fs)
	}
}

// endLocked stops forwarding fs: handlers drain what they have, flush and
// close; those not connected stop at once.
func (m *Manager) endLocked(fs *fwdStream) {
	close(fs.gone)
	if fs.hookCancel != nil {
		fs.hookCancel()
	}
	delete(m.streams, fs.st.ID())
}

func (m *Manager) staticURLs(fs *fwdStream) []string {
	return m.expand(fs, fs.set.Destinations)
}

// urlsLocked is what fs forwards to now: nothing while held, else the
// backend's answer once it came, else the static list.
func (m *Manager) urlsLocked(fs *fwdStream) []string {
	switch {
	case fs.held:
		return nil
	case fs.hookOK:
		return fs.hookURLs
	}
	return m.staticURLs(fs)
}

func (m *Manager) expand(fs *fwdStream, dests []string) []string {
	pub := fs.st.Publisher()
	var out []string
	for _, d := range dests {
		if _, ok := configs.GroupName(d); ok {
			// The member, hence the URL, is picked at each connect.
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
			continue
		}
		u, err := Expand(d, fs.st.Key(), pub.Params, pub.Forwarded+1)
		if err != nil {
			fs.log.Warn("forward destination skipped", "err", err)
			continue
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// applyLocked makes fs's handlers match urls: handlers of other URLs stop,
// new URLs get a handler, unchanged ones keep running untouched.
func (m *Manager) applyLocked(fs *fwdStream, urls []string, inEvent bool) {
	for u, h := range fs.handlers {
		if !slices.Contains(urls, u) {
			h.stop()
			delete(fs.handlers, u)
		}
	}
	for _, u := range urls {
		if fs.handlers[u] != nil {
			continue
		}
		var first *stream.Reader
		if inEvent {
			r, err := m.hub.Subscribe(m.ctx, fs.st.Key(), stream.ClientInfo{Protocol: "forward", Remote: hooks.Redact(u)}, 0)
			if err != nil {
				fs.log.Warn("forward: stream gone before start", "err", err)
				return
			}
			first = r
		}
		ctx, cancel := context.WithCancel(m.ctx)
		h := newHandler(m.hub, fs.st, u, fs.gone, m.opts, fs.log)
		h.noDelay = fs.set.NoDelay
		if name, ok := configs.GroupName(u); ok {
			h.grp = m.groupRoute(fs, name)
		}
		h.cancel = cancel
		fs.handlers[u] = h
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer cancel()
			h.run(ctx, first)
		}()
	}
}

// Reload applies new per-vhost settings: only destinations whose resolved
// URL changed are restarted; streams of vhosts that no longer forward
// stop, and live streams of vhosts that now forward start.
func (m *Manager) Reload(vhosts map[string]Settings) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vhosts = vhosts
	for _, fs := range m.streams {
		set, ok := vhosts[fs.st.Key().Vhost]
		if !ok || fs.st.Publisher().Forwarded >= set.HopLimit {
			m.applyLocked(fs, nil, false)
			m.endLocked(fs)
			continue
		}
		hookChanged := set.Backend != fs.set.Backend
		fs.set = set
		if hookChanged {
			if fs.hookCancel != nil {
				fs.hookCancel()
				fs.hookCancel = nil
			}
			fs.hookOK, fs.hookURLs = false, nil
			if set.Backend != "" {
				m.startHookLocked(fs)
			}
		}
		m.applyLocked(fs, m.urlsLocked(fs), false)
	}
	for _, st := range m.hub.Streams() {
		m.startLocked(st, false)
	}
}

// Stats lists every handler, ordered by stream then destination.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	var hs []*handler
	for _, fs := range m.streams {
		for _, h := range fs.handlers {
			hs = append(hs, h)
		}
	}
	m.mu.Unlock()
	out := make([]Stats, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Stats())
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Stream != out[k].Stream {
			return out[i].Stream < out[k].Stream
		}
		return out[i].Destination < out[k].Destination
	})
	return out
}
