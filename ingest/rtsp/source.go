package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/ondemand"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/backoff"
)

// SourceConfig is one camera to pull.
type SourceConfig struct {
	// URL is rtsp://[user:pass@]host[:port]/path; its credentials never
	// appear in logs, errors or stats.
	URL string
	// Key is where the source publishes in the hub.
	Key stream.Key
	// Transport is auto (UDP, then TCP if no UDP packet comes), tcp or udp.
	Transport string
	// OnDemand pulls only while something reads the stream.
	OnDemand bool
}

// SourcesOptions tune the pulls; zero values take the defaults.
type SourcesOptions struct {
	// Guard gates each publish like an encoder's (hooks apply).
	Guard *access.Guard
	// Downstream lists the streams made from a stream (the transcode
	// outputs, recursively): a player waiting for one of them is demand
	// for an on-demand source, and their readers are its audience.
	Downstream func(stream.Key) []stream.Key
	// DialTimeout bounds the TCP connect (default 5 s).
	DialTimeout time.Duration
	// ReadTimeout bounds each of DESCRIBE, SETUP, PLAY (default 10 s).
	ReadTimeout time.Duration
	// Silence is how long without RTP packets ends a pull (default 10 s).
	Silence time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts (default
	// 1 s and 30 s); the first FastRetries failures wait BackoffMin
	// (default 6: a camera that reboots or a network blip comes back
	// within seconds), then the wait doubles. A pull that played for
	// GoodAfter (default 1 min) resets the count. Each wait has ±20%
	// jitter.
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	FastRetries int
	GoodAfter   time.Duration
	// CloseAfter ends an on-demand pull this long after its last reader
	// left (default 10 s).
	CloseAfter time.Duration
}

func (o *SourcesOptions) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.DialTimeout, 5*time.Second)
	set(&o.ReadTimeout, 10*time.Second)
	set(&o.Silence, 10*time.Second)
	set(&o.BackoffMin, time.Second)
	set(&o.BackoffMax, 30*time.Second)
	set(&o.GoodAfter, time.Minute)
	set(&o.CloseAfter, 10*time.Second)
	if o.FastRetries <= 0 {
		o.FastRetries = 6
	}
	if o.Downstream == nil {
		o.Downstream = func(stream.Key) []stream.Key { return nil }
	}
}

// Source states.
const (
	StateIdle       = "idle" // on demand, nobody reading
	StateConnecting = "connecting"
	StatePlaying    = "playing"
	StateBackoff    = "backoff"
	StateStopped    = "stopped"
)

// SourceStats is a snapshot of one source, for the API and dashboard.
type SourceStats struct {
	// URL is the source URL with its credentials replaced by xxx.
	URL       string    `json:"url"`
	Stream    string    `json:"stream"`
	Vhost     string    `json:"vhost"`
	App       string    `json:"app"`
	Name      string    `json:"name"`
	OnDemand  bool      `json:"on_demand"`
	Transport string    `json:"transport"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	// LastError is the reason of the last failed or ended pull.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Reconnects counts attempts after the first (failed or ended pulls).
	Reconnects uint64 `json:"reconnects"`
	// Bytes counts RTP bytes received over every pull.
	Bytes uint64 `json:"bytes"`
	// PacketsLost counts RTP packets lost (sequence gaps); BadPackets the
	// RTP packets that did not decode.
	PacketsLost uint64 `json:"packets_lost"`
	BadPackets  uint64 `json:"bad_packets"`
}

// Sources pulls the configured cameras into the hub.
type Sources struct {
	hub  *stream.Hub
	opts SourcesOptions
	log  *slog.Logger
	srcs []*source
	wg   sync.WaitGroup
}

// NewSources prepares the pulls; Start runs them.
func NewSources(cfgs []SourceConfig, hub *stream.Hub, opts SourcesOptions, log *slog.Logger) *Sources {
	opts.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Sources{hub: hub, opts: opts, log: log}
	for i, c := range cfgs {
		if c.Transport == "" {
			c.Transport = "auto"
		}
		r := newRedactor(c.URL)
		src := &source{m: m, id: i, cfg: c, red: r, wake: make(chan struct{}, 1),
			log: log.With("source", i, "url", r.shown, "stream", c.Key.String())}
		src.stats = SourceStats{URL: r.shown, Stream: c.Key.String(), Vhost: c.Key.Vhost, App: c.Key.App,
			Name: c.Key.Name, OnDemand: c.OnDemand, Transport: c.Transport, State: StateStopped, Since: time.Now()}
		m.srcs = append(m.srcs, src)
	}
	return m
}

// Start runs every source until ctx ends.
func (m *Sources) Start(ctx context.Context) {
	if len(m.srcs) == 0 {
		return
	}
	m.hub.Listen(func(ev stream.Event) {
		if ev.Type == stream.EventDemand {
			m.onDemand(ev.Key)
		}
	})
	for _, s := range m.srcs {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
			s.setState(StateStopped)
		}()
	}
}

// Wait waits for every source to stop (after Start's ctx ended).
func (m *Sources) Wait() { m.wg.Wait() }

// Stats returns a snapshot of every source, in config order.
func (m *Sources) Stats() []SourceStats {
	out := make([]SourceStats, 0, len(m.srcs))
	for _, s := range m.srcs {
		out = append(out, s.snapshot())
	}
	return out
}

// onDemand wakes the on-demand sources whose stream, or a stream made
// from it, a player waits for.
func (m *Sources) onDemand(k stream.Key) {
	for _, s := range m.srcs {
		if !s.cfg.OnDemand {
			continue
		}
		if s.cfg.Key == k || containsKey(m.opts.Downstream(s.cfg.Key), k) {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

func containsKey(ks []stream.Key, k stream.Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// source is one camera's pull loop.
type source struct {
	m    *Sources
	id   int
	cfg  SourceConfig
	red  redactor
	log  *slog.Logger
	wake chan struct{}

	mu    sync.Mutex
	stats SourceStats

	bytes atomic.Uint64
	lost  atomic.Uint64
	bad   atomic.Uint64
}

func (s *source) snapshot() SourceStats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.Bytes, st.PacketsLost, st.BadPackets = s.bytes.Load(), s.lost.Load(), s.bad.Load()
	return st
}

func (s *source) setState(state string) {
	s.mu.Lock()
	if s.stats.State != state {
		s.stats.State, s.stats.Since = state, time.Now()
	}
	s.mu.Unlock()
}

// errNoReader ends an on-demand pull that nobody reads any more.
var errNoReader = errors.New("no reader left")

// run is the source's loop: pull, record the outcome, wait, retry.
func (s *source) run(ctx context.Context) {
	retry := s.m.opts.retry()
	for {
		if s.cfg.OnDemand {
			// Pull when a player asked for the stream (meanwhile, or
			// while the last attempt failed); else wait for one.
			select {
			case <-s.wake:
			default:
				s.setState(StateIdle)
				select {
				case <-ctx.Done():
					return
				case <-s.wake:
				}
			}
		}
		s.setState(StateConnecting)
		playedFor, err := s.pull(ctx)
		if ctx.Err() != nil {
			return
		}
		if playedFor >= s.m.opts.GoodAfter {
			retry.Reset()
		}
		if errors.Is(err, errNoReader) {
			s.log.Info("rtsp source stopped", "reason", err.Error(), "played", playedFor.Round(time.Millisecond))
			retry.Reset()
			continue
		}
		msg := s.red.text(err.Error())
		delay := retry.Next()
		s.mu.Lock()
		s.stats.LastError, s.stats.LastErrorAt = msg, time.Now()
		s.stats.Reconnects++
		n := s.stats.Reconnects
		s.mu.Unlock()
		attrs := []any{"reason", msg, "reconnects", n, "retry_in", delay.Round(time.Millisecond)}
		if playedFor > 0 {
			attrs = append(attrs, "played", playedFor.Round(time.Millisecond))
			s.log.Warn("rtsp source ended", attrs...)
		} else {
			s.log.Warn("rtsp source failed", attrs...)
		}
		s.setState(StateBackoff)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retry is the source's reconnect schedule.
func (o *SourcesOptions) retry() backoff.Backoff {
	return backoff.Backoff{Min: o.BackoffMin, Max: o.BackoffMax, Fast: o.FastRetries, Jitter: 0.2}
}

// pull connects, describes, sets up, publishes and plays until the
// camera stops, goes silent, or ctx ends. It returns how long it played.
func (s *source) pull(ctx context.Context) (time.Duration, error) {
	o := &s.m.opts
	u, err := base.ParseURL(s.cfg.URL)
	if err != nil {
		return 0, fmt.Errorf("source url: %w", err)
	}
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.ReadTimeout,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			d := net.Dialer{Timeout: o.DialTimeout}
			return d.DialContext(ctx, network, address)
		},
		OnPacketsLost: func(n uint64) { s.lost.Add(n) },
		OnDecodeError: func(error) { s.bad.Add(1) },
	}
	switch s.cfg.Transport {
	case "tcp":
		t := gortsplib.TransportTCP
		c.Transport = &t
	case "udp":
		t := gortsplib.TransportUDP
		c.Transport = &t
	}
	if err := c.Start2(); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, fmt.Errorf("describe: %w", err)
	}
	tl := newTimeline(nil)
	var medias []*description.Media
	var deps []*depacketizer
	for _, medi := range desc.Medias {
		for _, forma := range medi.Formats {
			d, err := newDepacketizer(medi, forma, tl)
			if err != nil {
				s.log.Info("rtsp source track skipped", "codec", forma.Codec(), "reason", err.Error())
				continue
			}
			medias, deps = append(medias, medi), append(deps, d)
			break // one format per media
		}
	}
	if len(deps) == 0 {
		return 0, errors.New("describe: no supported track")
	}
	if err := c.SetupAll(desc.BaseURL, medias); err != nil {
		return 0, fmt.Errorf("setup: %w", err)
	}

	areq := access.Request{Protocol: Protocol, ClientID: fmt.Sprintf("source-%d", s.id), IP: u.Hostname(),
		Vhost: s.cfg.Key.Vhost, App: s.cfg.Key.App, Stream: s.cfg.Key.Name, TcURL: s.red.shown}
	gctx, cancel := context.WithTimeout(ctx, o.ReadTimeout)
	err = o.Guard.Publish(gctx, areq)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("publish denied: %w", err)
	}
	pub, err := s.m.hub.Publish(s.cfg.Key, stream.ClientInfo{Protocol: Protocol, Remote: s.red.shown, Kick: c.Close})
	if err != nil {
		o.Guard.Unpublished(areq)
		return 0, err
	}
	w := &sourceWriter{pub: pub}
	defer func() {
		w.close()
		o.Guard.Unpublished(areq)
	}()
	var lastPacket atomic.Int64
	lastPacket.Store(time.Now().UnixNano())
	for _, d := range deps {
		c.OnPacketRTP(d.medi, d.forma, func(pkt *rtp.Packet) {
			lastPacket.Store(time.Now().UnixNano())
			s.bytes.Add(uint64(pkt.MarshalSize()))
			ntp, ok := c.PacketNTP(d.medi, pkt)
			if err := d.handle(pkt, ntp, ok, w.write); err != nil {
				s.bad.Add(1)
			}
		})
	}
	if _, err := c.Play(nil); err != nil {
		return 0, fmt.Errorf("play: %w", err)
	}
	start := time.Now()
	s.setState(StatePlaying)
	s.log.Info("rtsp source playing", "tracks", len(deps))

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastReader := time.Now()
	for {
		select {
		case err := <-waitErr:
			if ctx.Err() != nil {
				return time.Since(start), ctx.Err()
			}
			return time.Since(start), fmt.Errorf("session: %w", err)
		case now := <-tick.C:
			if silent := now.Sub(time.Unix(0, lastPacket.Load())); silent >= o.Silence {
				c.Close()
				<-waitErr
				return time.Since(start), fmt.Errorf("no rtp packet for %s", silent.Round(time.Second))
			}
			if s.cfg.OnDemand {
				if s.hasReader() {
					lastReader = now
				} else if now.Sub(lastReader) >= o.CloseAfter {
					c.Close()
					<-waitErr
					return time.Since(start), errNoReader
				}
			}
		}
	}
}

// hasReader reports whether anyone watches the source's stream or a
// stream made from it.
func (s *source) hasReader() bool {
	return ondemand.Watched(s.m.hub, append([]stream.Key{s.cfg.Key}, s.m.opts.Downstream(s.cfg.Key)...)...)
}

// sourceWriter serializes the hub writes of a pull's tracks (gortsplib
// calls UDP tracks' callbacks from their own goroutines).
type sourceWriter struct {
	mu  sync.Mutex
	pub *stream.Publisher
}

func (w *sourceWriter) write(p media.Packet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pub != nil {
		w.pub.WritePacket(p)
	}
}

func (w *sourceWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pub != nil {
		w.pub.Close()
		w.pub = nil
	}
}
