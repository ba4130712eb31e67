// Package ui is Podium's face: the dashboard (embedded assets, live over
// SSE), the JSON API (SRS-shaped where SRS has the endpoint), /metrics in
// Prometheus text format, and the admin login that guards all three.
//
// The UI only reads: everything it shows comes from the functions in Deps,
// which cmd wires to the hub, the transcode engine, the forward manager,
// the HLS muxer and the hardware probe. A nil function is a part of Podium
// that is not running; its panel stays empty.
package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/avstat"
)

// Deps is what the UI reads. Hub is required; the rest may be nil.
type Deps struct {
	Hub        *stream.Hub
	Transcodes func() []avstat.Transcode
	Forwards   func() []forward.Stats
	// HW is what `podium hw` prints: probe once at start and return the
	// cached result.
	HW func() []avstat.Encoder
	// CHeap reports the C heap libav allocates from (nil: not linked).
	CHeap func() avstat.CHeap
	// HLS lists the streams the HLS muxer is cutting.
	HLS func() []HLSStats
	// HLSURL returns the playlist path of a stream whose vhost has HLS
	// ("/live/cam1.m3u8", with "?vhost=" when several vhosts have HLS),
	// or "" when it has none. Used when HLS reports no URL of its own.
	HLSURL func(stream.Key) string
	// Sources lists the RTSP cameras pulled into the hub.
	Sources func() []SourceStats
	// Recordings is the DVR (nil: no vhost records).
	Recordings RecordingStore
	// Cluster is the registry and allocator (nil: no allocator routes).
	Cluster Cluster
	// Upstreams lists the streams an edge pulls, by key; EdgeCounters
	// its pull totals.
	Upstreams    func() map[stream.Key]UpstreamStats
	EdgeCounters func() EdgeCounters
}

// HLSStats is one stream's HLS output, as the dashboard shows it.
type HLSStats struct {
	Stream stream.Key
	// URL is the playlist path ("/live/cam1.m3u8?vhost=transcode").
	URL string
	// Segments counts the segments written since the stream started.
	Segments uint64
	// Bytes counts the segment bytes written.
	Bytes uint64
	// Dropped counts packets the muxer was too slow for.
	Dropped   uint64
	LastError string
}

// SourceStats is one RTSP source, as the dashboard shows it.
type SourceStats struct {
	URL        string     // secrets redacted
	Stream     stream.Key // where it is published
	State      string
	LastError  string
	Reconnects uint64
	Bytes      uint64
	Since      time.Time
}

// Options configure the UI.
type Options struct {
	// Version is Podium's version string.
	Version string
	// AdminPassword is auth.admin_password; "" means a generated password
	// whose hash lives in DataDir/admin.hash.
	AdminPassword string
	// DataDir holds admin.hash.
	DataDir string
	// Notice receives the one-time message with a generated password
	// (stderr); never the log.
	Notice io.Writer
	// SessionTTL is how long a dashboard login lasts (default 12h).
	SessionTTL time.Duration
	// LoginBurst failed logins per IP are allowed at once, then one per
	// LoginRefill (defaults 10 and 6s: ten a minute).
	LoginBurst  int
	LoginRefill time.Duration
	// Tick is the sampling and live-update interval (default 1s).
	Tick time.Duration
	// PlayBurst allocations per client address at once, then one per
	// PlayRefill (defaults 200 and 20ms: 50 a second).
	PlayBurst  int
	PlayRefill time.Duration
}

func (o Options) withDefaults() Options {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = 10
	}
	if o.LoginRefill <= 0 {
		o.LoginRefill = 6 * time.Second
	}
	if o.Tick <= 0 || o.Tick > time.Second {
		o.Tick = time.Second
	}
	if o.PlayBurst <= 0 {
		o.PlayBurst = defaultPlayBurst
	}
	if o.PlayRefill <= 0 {
		o.PlayRefill = defaultPlayRefill
	}
	if o.Notice == nil {
		o.Notice = os.Stderr
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// UI serves the dashboard, the API and /metrics.
type UI struct {
	deps    Deps
	opts    Options
	log     *slog.Logger
	auth    *auth
	engine  *gin.Engine
	started time.Time
	server  string // SRS's "server" id: stable for the life of the process
	pid     string

	host    *hostSampler
	traffic *traffic
	events  *broadcaster
	runtime *runtimeMetrics

	playLimit *limiter
	srsLog    *onceSet

	runOnce sync.Once
}

// New builds the UI. It loads or creates the admin password hash, so it
// fails when DataDir/admin.hash cannot be read or written.
func New(deps Deps, opts Options, log *slog.Logger) (*UI, error) {
	if deps.Hub == nil {
		return nil, fmt.Errorf("ui: no hub")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	a, err := newAuth(opts, log)
	if err != nil {
		return nil, err
	}
	u := &UI{
		deps:    deps,
		opts:    opts,
		log:     log,
		auth:    a,
		started: time.Now(),
		server:  "vid-" + randomID(6),
		pid:     strconv.Itoa(os.Getpid()),
		host:    newHostSampler("/proc"),
		traffic: newTraffic(),

		playLimit: newLimiter(opts.PlayBurst, opts.PlayRefill, 65536),
		srsLog:    newOnceSet(),
		runtime:   newRuntimeMetrics(),
	}
	u.host.sample(u.started) // figures before Run's first tick
	u.events = newBroadcaster(u.snapshotJSON)
	u.engine = u.routes()
	// A publish or unpublish shows on the dashboard at once, not at the
	// next tick.
	deps.Hub.Listen(func(stream.Event) { u.events.poke() })
	return u, nil
}

// Handler is the UI's http.Handler: every path but /healthz and the HLS
// files.
func (u *UI) Handler() http.Handler { return u.engine }

// Run samples host and traffic counters and drives the live updates until
// ctx ends; then it closes every live-update connection (so an HTTP
// shutdown does not wait for them).
func (u *UI) Run(ctx context.Context) {
	u.runOnce.Do(func() { u.run(ctx) })
}

func (u *UI) run(ctx context.Context) {
	defer u.events.close()
	t := time.NewTicker(u.opts.Tick)
	defer t.Stop()
	u.sample(time.Now())
	// A burst of publishes (a school's 40 classrooms at 9:00) makes one
	// update, not 40.
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			u.sample(now)
			u.auth.sweep(now)
			u.playLimit.sweep(now)
			u.events.publish()
		case <-u.events.poked():
			if !pending {
				pending = true
				debounce.Reset(100 * time.Millisecond)
			}
		case <-debounce.C:
			pending = false
			u.events.publish()
		}
	}
}

// sample updates the rates that need two readings.
func (u *UI) sample(now time.Time) {
	u.host.sample(now)
	u.traffic.sample(u.deps.Hub.Streams())
}
