package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/ondemand"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
	"github.com/podiumlive/podium/rtmp"
)

// maxBadRun is how many undecodable media messages in a row make a pull
// give up on its origin (garbage inside well-formed RTMP).
const maxBadRun = 200

var (
	errNoViewer = errors.New("no viewer left")
	errKicked   = errors.New("kicked")
)

// pull is one stream's pull: one goroutine (run) tries origins until the
// stream has no viewer or no origin has it.
type pull struct {
	e   *Edge
	key stream.Key
	cfg *Config
	log *slog.Logger

	lastDemand atomic.Int64 // unix nanos of the last demand
	cancel     context.CancelCauseFunc

	mu sync.Mutex
	up Upstream

	// owned by run
	pub    *stream.Publisher
	live   atomic.Bool // pub != nil, for the watchdog
	demux  flv.Demuxer
	tl     timeline
	meta   media.Metadata
	origin string // shown name of the current origin
	got    bool   // the current origin sent a usable packet
	badRun int
	bad    int
}

func newPull(e *Edge, key stream.Key, cfg *Config) *pull {
	p := &pull{e: e, key: key, cfg: cfg, log: e.log.With("stream", key.String())}
	p.up = Upstream{State: StateConnecting, Since: time.Now()}
	p.wanted()
	return p
}

func (p *pull) wanted() { p.lastDemand.Store(time.Now().UnixNano()) }

func (p *pull) snapshot() Upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

func (p *pull) setState(state, origin string) {
	p.mu.Lock()
	if p.up.State != state || p.up.Origin != origin {
		p.up.State, p.up.Origin, p.up.Since = state, origin, time.Now()
	}
	p.mu.Unlock()
}

// wantedNow reports whether anyone waits for or recently asked for the
// stream (before it is live).
func (p *pull) wantedNow(now time.Time) bool {
	return p.e.hub.Waiting(p.key) > 0 || now.Sub(time.Unix(0, p.lastDemand.Load())) < p.cfg.IdleClose
}

// run tries origins until nobody watches or every origin failed since the
// last media; then the stream ends (or, never live, its waiting players
// are told it was not found).
func (p *pull) run(ctx context.Context) {
	ctx, p.cancel = context.WithCancelCause(ctx)
	defer p.cancel(nil)
	tried := map[int]bool{}
	prev := -1
	var lastErr error
	start := time.Now()
	for {
		if ctx.Err() != nil {
			lastErr = context.Cause(ctx)
			break
		}
		if p.pub == nil && !p.wantedNow(time.Now()) {
			lastErr = errNoViewer
			break
		}
		i := p.e.origins.pick(p.cfg.Origins, tried, prev, p.key.String())
		if i < 0 {
			break
		}
		tried[i] = true
		err := p.session(ctx, i)
		if p.got {
			tried = map[int]bool{i: true}
			if errors.Is(err, errNoViewer) || errors.Is(err, errKicked) || ctx.Err() != nil {
				lastErr = err
				break
			}
			tried = map[int]bool{}
		} else if errors.Is(err, errNoViewer) || ctx.Err() != nil {
			lastErr = err
			break
		}
		lastErr = err
		p.e.nErrors.Add(1)
		p.mu.Lock()
		p.up.LastError = err.Error()
		if p.pub != nil {
			p.up.Switches++
		}
		switches := p.up.Switches
		p.mu.Unlock()
		if p.pub != nil {
			p.e.nFailovers.Add(1)
		}
		p.log.Warn("edge origin failed", "origin", shown(p.cfg.Origins[i]), "reason", err.Error(),
			"live", p.pub != nil, "switches", switches)
		prev = i
	}
	p.e.remove(p)
	p.setState(StateStopped, "")
	d := time.Since(start).Round(time.Millisecond)
	if p.pub != nil {
		p.pub.Close()
		attrs := []any{"duration", d, "reason", reason(lastErr)}
		if p.bad > 0 {
			attrs = append(attrs, "bad_packets", p.bad)
		}
		p.log.Info("edge pull stopped", attrs...)
		return
	}
	if errors.Is(lastErr, errNoViewer) || ctx.Err() != nil {
		p.log.Info("edge pull stopped", "duration", d, "reason", reason(lastErr))
		return
	}
	why := "no origin"
	if lastErr != nil {
		why = lastErr.Error()
	}
	p.log.Warn("edge stream not found on any origin", "origins", len(p.cfg.Origins), "after", d,
		"players_waiting", p.e.hub.Waiting(p.key), "last_error", why)
	p.e.hub.Refuse(p.key, fmt.Errorf("no origin has %s (last: %s): %w", p.key, why, stream.ErrNotFound))
}

func reason(err error) string {
	if err == nil {
		return "no origin has the stream"
	}
	return err.Error()
}

// url is the pull URL of origin i.
func (p *pull) url(i int) (string, error) {
	vhost := p.cfg.OriginVhost
	if vhost == "" {
		vhost = p.key.Vhost
	}
	u, err := streamurl.Destination(p.cfg.Origins[i], p.key.App, p.key.Name, vhost, "")
	if err != nil {
		return "", err
	}
	if p.cfg.OriginVhost != "" {
		if q := u.Query(); q.Get("vhost") == "" {
			q.Set("vhost", p.cfg.OriginVhost)
			u.RawQuery = q.Encode()
		}
	}
	return u.String(), nil
}

// session pulls from origin i until it fails, goes idle, or the stream
// has no viewer left for IdleClose.
func (p *pull) session(ctx context.Context, i int) error {
	name := p.cfg.Origins[i]
	p.origin, p.got, p.badRun = shown(name), false, 0
	p.setState(StateConnecting, p.origin)
	raw, err := p.url(i)
	if err != nil {
		return err
	}
	pl, err := rtmp.DialPull(ctx, raw, rtmp.PullOptions{ConnectTimeout: p.cfg.ConnectTimeout, Limits: p.e.opts.Limits})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, rtmp.ErrRejected) {
			p.e.origins.failed(name, err) // the origin, not the stream
		}
		return fmt.Errorf("pull %s: %w", p.origin, err)
	}
	defer pl.Close()
	p.e.origins.busy(name, 1)
	defer p.e.origins.busy(name, -1)
	p.tl.switched()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer func() { <-done }()
	defer cancel(nil) // runs first: stops the watchdog
	go func() {
		defer close(done)
		p.watch(sctx, cancel)
	}()
	err = pl.Run(sctx, p.cfg.IdleTimeout, p.message)
	if c := context.Cause(sctx); sctx.Err() != nil && c != nil {
		err = c
	}
	switch {
	case ctx.Err() != nil, errors.Is(err, errNoViewer), errors.Is(err, errKicked), errors.Is(err, rtmp.ErrPlayEnded):
		// not the origin's fault
	case !p.got && (errors.Is(err, rtmp.ErrIdle) || errors.Is(err, rtmp.ErrRejected)):
		// the origin works but has not got the stream (srs#464)
	default:
		p.e.origins.failed(name, err) // dead, reset, hung or sending garbage
	}
	return fmt.Errorf("pull %s: %w", p.origin, err)
}

// watch ends the session when the stream has had no viewer for
// IdleClose (or, before it is live, when nobody waits for it any more).
func (p *pull) watch(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(p.e.opts.Tick)
	defer t.Stop()
	lastViewer := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !p.live.Load() {
				if !p.wantedNow(now) {
					cancel(errNoViewer)
					return
				}
				continue
			}
			if ondemand.Watched(p.e.hub, p.key) {
				lastViewer = now
			} else if d := time.Unix(0, p.lastDemand.Load()); d.After(lastViewer) {
				lastViewer = d // an HLS playlist request
			}
			if now.Sub(lastViewer) >= p.cfg.IdleClose {
				cancel(errNoViewer)
				return
			}
		}
	}
}

// message takes one message of the origin, on the session's goroutine.
func (p *pull) message(m rtmp.Message) error {
	var (
		pkt media.Packet
		ok  bool
		err error
	)
	switch m.Type {
	case rtmp.TypeAudio:
		pkt, ok, err = p.demux.Audio(m.Timestamp, m.Payload)
	case rtmp.TypeVideo:
		pkt, ok, err = p.demux.Video(m.Timestamp, m.Payload)
	case rtmp.TypeData:
		if meta, merr := flv.ParseMetadata(m.Payload); merr == nil && !reflect.DeepEqual(meta, p.meta) {
			p.meta = meta
			if p.pub != nil {
				p.pub.WriteMetadata(meta)
			}
		}
		return nil
	}
	if err != nil {
		p.bad++
		if p.badRun++; p.badRun >= maxBadRun {
			return fmt.Errorf("%d undecodable media messages in a row (last: %w)", p.badRun, err)
		}
		return nil
	}
	p.badRun = 0
	if !ok || !p.tl.apply(&pkt) {
		return nil
	}
	if p.pub == nil {
		pub, err := p.e.hub.Publish(p.key, stream.ClientInfo{Protocol: Protocol, Remote: p.origin,
			Kick: func() { p.cancel(errKicked) }})
		if err != nil {
			return err
		}
		p.pub = pub
		p.live.Store(true)
		if p.meta != nil {
			pub.WriteMetadata(p.meta)
		}
	}
	if !p.got {
		p.got = true
		p.setState(StatePlaying, p.origin)
		p.log.Info("edge pulling", "origin", p.origin)
	}
	p.pub.WritePacket(pkt)
	return nil
}
