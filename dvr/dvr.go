// Package dvr records the streams of vhosts that have `dvr` to files
// (SRS's DVR): fragmented MP4 that plays to its last second after a crash
// and is rewritten progressive on a clean end, or FLV. One goroutine per
// publish reads the stream from the hub like any consumer, so a slow or
// full disk never slows the publisher or anyone else.
//
// Files are written under a temporary name (NAME.tmp.mp4) and renamed
// when closed; on_dvr is posted then. A leftover of a crash is finished at
// the next start. Recordings older than `keep` are deleted; below
// `min_free` free bytes no new file starts.
package dvr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/drain"
	"github.com/podiumlive/podium/internal/ratelog"
)

// Plans.
const (
	PlanSession = configs.DVRPlanSession
	PlanSegment = configs.DVRPlanSegment
)

// Settings is one vhost's DVR configuration.
type Settings struct {
	Template Template
	Plan     string
	Duration time.Duration // segment length (plan segment)
	Keep     time.Duration // 0: keep every recording
	MinFree  int64         // bytes
	OnDVR    []string      // on_dvr hook URLs
	Setting  string        // the config key, for log lines: vhosts[0].dvr
}

// SettingsFrom resolves the enabled dvr sections of a config, by vhost.
func SettingsFrom(cfg *configs.Config) (map[string]Settings, error) {
	out := make(map[string]Settings)
	for i, v := range cfg.Vhosts {
		if v.DVR == nil || !v.DVR.Enabled {
			continue
		}
		t, err := ParseTemplate(v.DVR.Path)
		if err != nil {
			return nil, fmt.Errorf("vhosts[%d].dvr.path: %w", i, err)
		}
		s := Settings{
			Template: t, Plan: v.DVR.Plan, Duration: v.DVR.Duration.Std(),
			Keep: v.DVR.Keep.Std(), MinFree: v.DVR.MinFree.Bytes(),
			Setting: fmt.Sprintf("vhosts[%d].dvr", i),
		}
		if s.Plan == PlanSegment && s.Duration < time.Second {
			s.Duration = 30 * time.Minute
		}
		if v.Hooks != nil {
			s.OnDVR = append([]string(nil), v.Hooks.OnDVR...)
		}
		out[v.Name] = s
	}
	return out, nil
}

// Options tune the manager; zero values take the defaults.
type Options struct {
	// ErrorInterval aggregates disk errors into one log line per interval
	// (default 10 s).
	ErrorInterval time.Duration
	// FreeInterval is how often a min_free shortage is logged (1 min).
	FreeInterval time.Duration
	// CleanInterval is how often keep is enforced (1 min).
	CleanInterval time.Duration
	// Hooks posts on_dvr; nil: a client with the default timeout.
	Hooks *hooks.Client
	// ServerID is sent to hooks as server_id.
	ServerID string
}

// Manager records every stream of the vhosts that have DVR.
type Manager struct {
	hub    *stream.Hub
	vhosts map[string]Settings
	opts   Options
	log    *slog.Logger
	hooks  *hooks.Client

	mu        sync.Mutex
	ctx       context.Context
	cancel    context.CancelFunc
	closed    bool
	recorders map[*recorder]struct{}
	catalog   map[string]Recording // closed recordings by ID
	closingID map[string]bool      // files being finished
	recWG     sync.WaitGroup       // recorders
	wg        sync.WaitGroup       // files being finished, the keep loop

	bytes    atomic.Int64 // bytes of closed recordings, this run
	files    atomic.Int64
	failures atomic.Int64

	diskErrors ratelog.Counter
	noRoom     ratelog.Counter
}

// NewManager prepares DVR for the given per-vhost settings; Start begins.
func NewManager(hub *stream.Hub, vhosts map[string]Settings, opts Options, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ErrorInterval <= 0 {
		opts.ErrorInterval = 10 * time.Second
	}
	if opts.FreeInterval <= 0 {
		opts.FreeInterval = time.Minute
	}
	if opts.CleanInterval <= 0 {
		opts.CleanInterval = time.Minute
	}
	if opts.ServerID == "" {
		opts.ServerID = "podium"
	}
	m := &Manager{
		hub: hub, vhosts: vhosts, opts: opts, log: log, hooks: opts.Hooks,
		recorders: make(map[*recorder]struct{}),
		catalog:   make(map[string]Recording),
		closingID: make(map[string]bool),
	}
	if m.hooks == nil {
		m.hooks = hooks.New(0, log)
	}
	return m
}

// Enabled reports whether any vhost records.
func (m *Manager) Enabled() bool { return len(m.vhosts) > 0 }

// Start finishes what a crash left, lists the recordings on disk, and
// records every stream published from now on (and those already live)
// until Close.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.mu.Unlock()
	if len(m.vhosts) == 0 {
		return
	}
	m.scan()
	m.hub.Listen(m.onEvent)
	for _, st := range m.hub.Streams() {
		m.onEvent(stream.Event{Type: stream.EventPublish, Stream: st})
	}
	m.wg.Go(func() { m.cleanLoop(m.ctx) })
}

// Close stops recording: each file is written out and closed (their
// streams end with the hub, or now after a bound), and waits for the
// finishing rewrites and hooks.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	cancel := m.cancel
	m.mu.Unlock()
	// Recorders of streams that ended (hub closed) close their files; one
	// still reading a live stream is stopped after a bound.
	drain.Wait(&m.recWG, 5*time.Second, cancel)
	m.wg.Wait()
	m.hooks.Wait()
}

func (m *Manager) onEvent(ev stream.Event) {
	if ev.Type != stream.EventPublish {
		return // the recorder sees EOF on its reader
	}
	key := ev.Stream.Key()
	set, ok := m.vhosts[key.Vhost]
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx == nil {
		return
	}
	r, err := m.hub.Subscribe(m.ctx, key, stream.ClientInfo{Protocol: "dvr", Remote: "dvr recorder"}, 0)
	if err != nil {
		return
	}
	if r.Stream() != ev.Stream {
		r.Close()
		return
	}
	rec := &recorder{m: m, key: key, set: set, log: m.log.With("stream", key.String())}
	m.recorders[rec] = struct{}{}
	ctx := m.ctx
	m.recWG.Go(func() {
		rec.run(ctx, r)
		m.mu.Lock()
		delete(m.recorders, rec)
		m.mu.Unlock()
	})
}

// closing, done and failed keep the catalog and counters.
func (m *Manager) closing(r Recording) {
	m.mu.Lock()
	m.closingID[r.ID] = true
	m.mu.Unlock()
}

func (m *Manager) done(r Recording, kept bool) {
	m.mu.Lock()
	delete(m.closingID, r.ID)
	if kept {
		m.catalog[r.ID] = r
	}
	m.mu.Unlock()
	if kept {
		m.files.Add(1)
		m.bytes.Add(r.Bytes)
	}
}

func (m *Manager) failed() { m.failures.Add(1) }

// diskError counts a write failure; the log gets one line per
// ErrorInterval with the number of failures since the last one.
func (m *Manager) diskError(key stream.Key, err error) {
	m.failures.Add(1)
	n, ok := m.diskErrors.Tick(time.Now(), m.opts.ErrorInterval)
	if !ok {
		return
	}
	m.log.Error("dvr write failed; what was written is closed and kept, recording resumes when the disk takes it again",
		"stream", key.String(), "err", err, "failures", n, "retry", retryAfter)
}

// roomFor reports whether the disk has min_free left for a new file;
// a shortage is logged once per FreeInterval.
func (m *Manager) roomFor(key stream.Key, set Settings) bool {
	if set.MinFree <= 0 {
		return true
	}
	free, err := freeBytes(set.Template.Root())
	if err != nil || free >= set.MinFree {
		return true
	}
	m.failures.Add(1)
	if n, ok := m.noRoom.Tick(time.Now(), m.opts.FreeInterval); ok {
		m.log.Error("dvr: not starting a recording: free disk below "+set.Setting+".min_free",
			"stream", key.String(), "free", free, "min_free", set.MinFree, "dir", set.Template.Root(), "refused", n)
	}
	return false
}

// freeBytes is the space an unprivileged writer has left where dir is
// (or its nearest existing parent).
func freeBytes(dir string) (int64, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		parent := parentDir(dir)
		if parent == dir {
			return 0, err
		}
		dir = parent
	}
}

// recordingID is a recording's stable id: from its file name.
func recordingID(file string) string {
	h := sha256.Sum256([]byte(file))
	return hex.EncodeToString(h[:8])
}

func itoa(i int) string { return strconv.Itoa(i) }
