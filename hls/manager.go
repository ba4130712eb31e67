// Package hls cuts the streams of vhosts that have `hls` into HTTP Live
// Streaming: MPEG-TS (or fMP4) segments through mediacommon, live
// playlists through grafov/m3u8, written atomically under the vhost's HLS
// directory and served by Manager's http.Handler.
//
// Each live stream has one goroutine that owns its segmenter: it reads the
// stream from the hub, cuts a segment on the first video keyframe at or
// after the fragment length (on time for audio-only streams), and writes
// the segment and the playlist at once, so a segment is listed as soon as
// the packet that ends it arrives. A republish, a codec change or a
// restart continues the same playlist after an EXT-X-DISCONTINUITY; the
// media sequence is persisted next to the segments and never goes back.
//
// Layout under a vhost's path: APP/STREAM.m3u8, and APP/STREAM/ with the
// segments (SEQ.ts or SEQ.m4s, init-N.mp4) and .state.json.
package hls

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
	"github.com/podiumlive/podium/internal/drain"
	"github.com/podiumlive/podium/internal/ratelog"
)

// Variants.
const (
	VariantMPEGTS = "mpegts"
	VariantFMP4   = "fmp4"
)

// Settings is one vhost's HLS configuration.
type Settings struct {
	Fragment time.Duration
	Window   int
	Path     string
	Variant  string
	Dispose  time.Duration // 0: never remove the files
	OnHLS    []string      // on_hls hook URLs
}

// SettingsFrom resolves the enabled hls sections of a config, by vhost.
func SettingsFrom(cfg *configs.Config) map[string]Settings {
	out := make(map[string]Settings)
	for _, v := range cfg.Vhosts {
		if v.HLS == nil || !v.HLS.Enabled {
			continue
		}
		s := Settings{
			Fragment: v.HLS.Fragment.Std(),
			Window:   v.HLS.Window,
			Path:     v.HLS.Path,
			Variant:  v.HLS.Variant,
			Dispose:  v.HLS.Dispose.Std(),
		}
		if v.Hooks != nil {
			s.OnHLS = append([]string(nil), v.Hooks.OnHLS...)
		}
		out[v.Name] = s
	}
	return out
}

func (s Settings) withDefaults() Settings {
	if s.Fragment < time.Second {
		s.Fragment = 2 * time.Second
	}
	if s.Window < 2 {
		s.Window = 6
	}
	if s.Variant != VariantFMP4 {
		s.Variant = VariantMPEGTS
	}
	if s.Dispose < 0 {
		s.Dispose = 0
	}
	return s
}

// Options tune the manager; zero values take the defaults.
type Options struct {
	// Keep is how many segments past the window stay on disk for slow
	// players (default 2).
	Keep int
	// ErrorInterval aggregates write errors (disk full...) into one log
	// line per interval (default 10 s).
	ErrorInterval time.Duration
	// Hooks posts on_hls; nil: a client with the default timeout.
	Hooks *hooks.Client
	// ServerID is sent to hooks as server_id.
	ServerID string
	// OnDemand reports whether a vhost's streams are pulled only while
	// someone watches (an edge): a playlist request is demand for the
	// stream, and waits up to DemandWait (default 10 s) for its first
	// segment to be listed.
	OnDemand   func(vhost string) bool
	DemandWait time.Duration
}

// Manager segments every stream of the vhosts that have HLS and serves the
// result over HTTP.
type Manager struct {
	hub   *stream.Hub
	opts  Options
	log   *slog.Logger
	hooks *hooks.Client

	vhosts map[string]Settings
	order  []string          // HLS vhosts in a stable order, for serving without ?vhost=
	roots  map[string]string // vhost → directory
	// writeFile writes one file atomically; tests swap it to simulate a
	// full disk.
	writeFile func(name string, data []byte) error

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	streams map[stream.Key]*hlsStream
	wg      sync.WaitGroup
	closed  bool
	listed  chan struct{} // closed and replaced whenever a segment is listed

	requests atomic.Uint64
	notFound atomic.Uint64

	diskErrors ratelog.Counter
}

// NewManager prepares HLS for the given per-vhost settings; Start begins.
func NewManager(hub *stream.Hub, vhosts map[string]Settings, opts Options, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Keep <= 0 {
		opts.Keep = 2
	}
	if opts.ErrorInterval <= 0 {
		opts.ErrorInterval = 10 * time.Second
	}
	if opts.ServerID == "" {
		opts.ServerID = "podium"
	}
	if opts.DemandWait <= 0 {
		opts.DemandWait = 10 * time.Second
	}
	m := &Manager{
		hub: hub, opts: opts, log: log, hooks: opts.Hooks,
		vhosts:    make(map[string]Settings, len(vhosts)),
		roots:     make(map[string]string, len(vhosts)),
		writeFile: writeAtomic,
		streams:   make(map[stream.Key]*hlsStream),
		listed:    make(chan struct{}),
	}
	if m.hooks == nil {
		m.hooks = hooks.New(0, log)
	}
	for name, s := range vhosts {
		m.vhosts[name] = s.withDefaults()
		m.order = append(m.order, name)
	}
	sort.Strings(m.order)
	// Vhosts that share a path get a subdirectory each, so their
	// APP/STREAM names cannot collide.
	byPath := make(map[string][]string)
	for _, name := range m.order {
		p, err := filepath.Abs(m.vhosts[name].Path)
		if err != nil {
			return nil, fmt.Errorf("hls path of vhost %s: %w", name, err)
		}
		byPath[p] = append(byPath[p], name)
	}
	for p, names := range byPath {
		for i, name := range names {
			root := p
			if len(names) > 1 {
				sub := name
				if streamurl.ValidName(sub) != nil {
					sub = fmt.Sprintf("vhost%d", i)
				}
				root = filepath.Join(p, sub)
			}
			m.roots[name] = root
		}
	}
	return m, nil
}

// Start creates the HLS directories, picks up the streams a previous run
// left (their files are disposed of on schedule), and segments every
// stream published from now on until ctx ends. Streams already live are
// picked up too.
func (m *Manager) Start(ctx context.Context) error {
	for _, name := range m.order {
		if err := os.MkdirAll(m.roots[name], 0o755); err != nil {
			return fmt.Errorf("hls directory of vhost %s: %w", name, err)
		}
	}
	m.mu.Lock()
	m.ctx, m.cancel = context.WithCancel(ctx)
	for _, name := range m.order {
		m.scanLocked(name)
	}
	m.mu.Unlock()
	if len(m.vhosts) == 0 {
		return nil
	}
	m.hub.Listen(m.onEvent)
	for _, st := range m.hub.Streams() {
		m.onEvent(stream.Event{Type: stream.EventPublish, Stream: st})
	}
	return nil
}

// Close stops listening, lets every segmenter finish its last segment
// (their streams end with the hub, or now if ctx ended) and cancels pending
// disposals: files of streams that ended stay for the next run to dispose.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, s := range m.streams {
		if s.dispose != nil {
			s.dispose.Stop()
			s.dispose = nil
		}
	}
	cancel := m.cancel
	m.mu.Unlock()
	// Streams that ended (hub closed) drain and write their last segment;
	// a segmenter still reading a live stream is stopped after a bound.
	drain.Wait(&m.wg, 5*time.Second, cancel)
}

// Wait returns when every segmenter has ended.
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) onEvent(ev stream.Event) {
	if ev.Type != stream.EventPublish {
		return // the segmenter sees EOF on its reader
	}
	key := ev.Stream.Key()
	set, ok := m.vhosts[key.Vhost]
	if !ok {
		return
	}
	log := m.log.With("stream", key.String())
	if streamurl.ValidName(key.App) != nil || streamurl.ValidName(key.Name) != nil {
		log.Warn("hls skipped: app or stream name is not a safe file name")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx == nil {
		return
	}
	s := m.streamLocked(key, set)
	r, err := m.hub.Subscribe(m.ctx, key, stream.ClientInfo{Protocol: "hls", Remote: "hls segmenter"}, 0)
	if err != nil {
		log.Warn("hls: stream gone before start", "err", err)
		return
	}
	if r.Stream() != ev.Stream {
		r.Close()
		return
	}
	if s.dispose != nil {
		s.dispose.Stop()
		s.dispose = nil
	}
	prev := s.done
	done := make(chan struct{})
	s.done, s.live, s.liveSegs = done, true, 0
	s.setLive(true)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.run(m.ctx, r, prev, done)
	}()
}

// streamLocked returns key's hlsStream, making it on first use.
func (m *Manager) streamLocked(key stream.Key, set Settings) *hlsStream {
	if s := m.streams[key]; s != nil {
		return s
	}
	root := m.roots[key.Vhost]
	s := &hlsStream{
		m: m, key: key, set: set, root: root,
		dir: filepath.Join(root, key.App, key.Name),
		log: m.log.With("stream", key.String()),
	}
	s.stats = StreamStats{
		Vhost: key.Vhost, App: key.App, Stream: key.Name, Variant: set.Variant,
		Playlist: "/" + key.App + "/" + key.Name + ".m3u8",
	}
	m.streams[key] = s
	return s
}

// ended is called by a segmenter when its publish is over.
func (m *Manager) ended(s *hlsStream, done chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.done != done {
		return // a republish already took over
	}
	s.live = false
	s.setLive(false)
	m.scheduleDisposeLocked(s, s.set.Dispose)
}

func (m *Manager) scheduleDisposeLocked(s *hlsStream, after time.Duration) {
	if m.closed || s.set.Dispose <= 0 {
		return
	}
	if s.dispose != nil {
		s.dispose.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(max(after, 0), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if s.dispose != t || s.live || m.closed {
			return
		}
		if s.done != nil {
			select {
			case <-s.done:
			default:
				return
			}
		}
		s.dispose = nil
		s.load()
		s.log.Info("hls disposed: publisher gone", "after", s.set.Dispose)
		s.removeFiles()
		delete(m.streams, s.key)
	})
	s.dispose = t
}

// scanLocked finds the streams a previous run left under a vhost's
// directory and schedules their disposal, counted from their last write.
func (m *Manager) scanLocked(vhost string) {
	set := m.vhosts[vhost]
	root := m.roots[vhost]
	apps, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, app := range apps {
		if !app.IsDir() || streamurl.ValidName(app.Name()) != nil {
			continue
		}
		names, err := os.ReadDir(filepath.Join(root, app.Name()))
		if err != nil {
			continue
		}
		for _, n := range names {
			if !n.IsDir() || streamurl.ValidName(n.Name()) != nil {
				continue
			}
			dir := filepath.Join(root, app.Name(), n.Name())
			st, mtime, err := loadState(dir)
			if err != nil || mtime.IsZero() || (len(st.Segments) == 0 && len(st.Retired) == 0) {
				continue
			}
			key := stream.Key{Vhost: vhost, App: app.Name(), Name: n.Name()}
			s := m.streamLocked(key, set)
			s.load()
			m.scheduleDisposeLocked(s, time.Until(mtime.Add(set.Dispose)))
		}
	}
}

// diskError records a write failure; the log gets one line per
// ErrorInterval with the number of failures since the last one.
func (m *Manager) diskError(s *hlsStream, err error) {
	s.updateStats(err, 0)
	n, ok := m.diskErrors.Tick(time.Now(), m.opts.ErrorInterval)
	if !ok {
		return
	}
	m.log.Error("hls write failed; segments are skipped until it works again",
		"stream", s.key.String(), "err", err, "failures", n, "interval", m.opts.ErrorInterval)
}

// args is the query appended to playlist URIs: ?vhost= when several
// vhosts serve HLS.
func (m *Manager) args(vhost string) string {
	if len(m.order) > 1 {
		return "vhost=" + vhost
	}
	return ""
}
