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
	errNoViewer      = errors.New("no viewer left")
	errKicked        = errors.New("kicked")
	errYield         = errors.New("published here: the pull gave way")
	errPublishedHere = errors.New("published here by another publisher")
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
	done       chan struct{} // closed when run returned

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
	p := &pull{e: e, key: key, cfg: cfg, log: e.log.With("stream", key.String()), done: make(chan struct{})}
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
// last media (a pull of a group keeps looking a while, see group.go); then
// the stream ends (or, never live, its waiting players are told it was not
// found; a master's players keep waiting for a publish).
func (p *pull) run(ctx context.Context) {
	defer p.cancel(nil)
	tried := map[string]bool{}
	prev := ""
	var lastErr error
	start := time.Now()
	lost := start // when the pull last had no upstream sending media
	round := 0    // rounds over every candidate since lost
	for {
		if ctx.Err() != nil {
			lastErr = context.Cause(ctx)
			break
		}
		if p.pub == nil && !p.wantedNow(time.Now()) {
			lastErr = errNoViewer
			break
		}
		if p.pub == nil && p.e.hub.Get(p.key) != nil {
			lastErr = errPublishedHere
			break
		}
		c, ok := p.next(tried, prev)
		if !ok {
			if !p.keepLooking(ctx, lost) {
				break
			}
			tried, prev = map[string]bool{}, ""
			round++
			continue
		}
		tried[c.name] = true
		err := p.session(ctx, c)
		if p.got {
			lost, round = time.Now(), 0
			tried = map[string]bool{c.name: true}
			if errors.Is(err, errNoViewer) || errors.Is(err, errKicked) || ctx.Err() != nil {
				lastErr = err
				break
			}
			tried = map[string]bool{}
		} else if errors.Is(err, errNoViewer) || ctx.Err() != nil {
			lastErr = err
			break
		}
		lastErr = err
		prev = c.name
		if round > 0 {
			continue // the same members asked again while the class moves: logged once
		}
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
		p.log.Warn("edge origin failed", "origin", shown(c.name), "reason", err.Error(),
			"live", p.pub != nil, "switches", switches)
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
	if errors.Is(lastErr, errNoViewer) || errors.Is(lastErr, errPublishedHere) || ctx.Err() != nil {
		p.log.Info("edge pull stopped", "duration", d, "reason", reason(lastErr))
		return
	}
	why := "no origin"
	if lastErr != nil {
		why = lastErr.Error()
	}
	p.log.Warn("edge stream not found on any origin", "origins", len(p.cfg.Origins), "groups", p.cfg.Groups,
		"after", d, "players_waiting", p.e.hub.Waiting(p.key), "last_error", why)
	p.e.hub.Refuse(p.key, fmt.Errorf("no origin has %s (last: %s): %w", p.key, why, stream.ErrNotFound))
}

// keepLooking is asked when no origin is left to try this round. A pull
// of static origins gives up. A pull of a group waits retryPause (less
// when the directory changes) and tries again: a master's while someone
// wants the stream, an edge's for moveWait after it lost its live
// upstream. It reports whether to try again.
func (p *pull) keepLooking(ctx context.Context, lost time.Time) bool {
	if len(p.cfg.Groups) == 0 || p.e.opts.Directory == nil {
		return false
	}
	if !p.cfg.OwnerOnly && (p.pub == nil || time.Since(lost) >= moveWait) {
		return false
	}
	if p.cfg.OwnerOnly && p.pub != nil && (time.Since(lost) >= moveWait || !ondemand.Watched(p.e.hub, p.key)) {
		return false
	}
	p.setState(StateConnecting, "")
	t := time.NewTimer(retryPause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-p.e.changes():
	case <-t.C:
	}
	return true
}

func reason(err error) string {
	if err == nil {
		return "no origin has the stream"
	}
	return err.Error()
}

// url is the pull URL of c: a group member is asked not to wait for a
// stream it does not have (NoWaitParam).
func (p *pull) url(c candidate) (string, error) {
	vhost := p.cfg.OriginVhost
	if vhost == "" {
		vhost = p.key.Vhost
	}
	u, err := streamurl.Destination(c.name, p.key.App, p.key.Name, vhost, "")
	if err != nil {
		return "", err
	}
	q := u.Query()
	if vhost != streamurl.DefaultVhost && q.Get("vhost") == "" {
		q.Set("vhost", vhost)
	}
	if c.member {
		q.Set(NoWaitParam, "1")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// session pulls from origin c until it fails, goes idle, or the stream
// has no viewer left for IdleClose.
func (p *pull) session(ctx context.Context, c candidate) error {
	name := c.name
	p.origin, p.got, p.badRun = shown(name), false, 0
	p.setState(StateConnecting, p.origin)
	raw, err := p.url(c)
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
