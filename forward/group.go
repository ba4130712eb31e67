package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
)

// errNoCluster: a group destination on a box without a cluster registry.
var errNoCluster = errors.New("no cluster registry: the destination forwards nowhere")

// errLeft ends a session whose member left the group.
var errLeft = errors.New("member left the group")

// groupRoute is a handler's `group:NAME` destination: each (re)connect
// goes to a member the picker chooses, and the handler stays on it while
// it works (sticky). A member that fails (reset, refused, timed out,
// refused the publish, left the group) is dropped at once for another,
// with no backoff wait, up to moveBurst moves; then one move per
// moveEvery, so a flapping group does not bounce the stream. The stream
// never moves back by itself.
type groupRoute struct {
	name   string // the group
	picker *picker
	key    stream.Key
	param  string
	hops   int
	// Move budget: a token bucket.
	tokens float64
	filled time.Time
	burst  float64
	every  time.Duration
}

// takeMove spends a move token; when none is left it reserves the next
// one and returns how long until it comes.
func (g *groupRoute) takeMove(now time.Time) time.Duration {
	g.tokens = min(g.burst, g.tokens+float64(now.Sub(g.filled))/float64(g.every))
	g.filled = now
	g.tokens--
	if g.tokens >= 0 {
		return 0
	}
	return time.Duration(-g.tokens * float64(g.every))
}

func (h *handler) setMember(m groups.Member, move bool) {
	h.mu.Lock()
	h.member = m.Node
	if move {
		h.moves++
	}
	h.mu.Unlock()
}

// kick ends the current session with cause (a move); the handler goes on.
func (h *handler) kick(cause error) {
	h.mu.Lock()
	k := h.kickFn
	h.mu.Unlock()
	if k != nil {
		k(cause)
	}
}

// runGroup is run for a group destination.
func (h *handler) runGroup(ctx context.Context, first *stream.Reader) {
	g := h.grp
	if g.picker == nil {
		if first != nil {
			first.Close()
		}
		h.setState(StateBackoff, fmt.Errorf("%s: %w", h.dest, errNoCluster))
		h.log.Warn("forward to a group without a cluster registry: forwarding nowhere")
		select {
		case <-ctx.Done():
		case <-h.gone:
		}
		h.setState(StateStopped, nil)
		return
	}
	b := h.opts.backoff()
	var (
		from    string // the member the stream is leaving, "" at its start
		reason  error
		lastErr error
		waited  bool   // waited once with no member: members in backoff may be retried
		noneLog string // the last "no member" error logged
	)
	for {
		m, ok := g.picker.pick(g.name, false)
		if !ok && waited {
			// Every member failed lately: retry the least loaded.
			m, ok = g.picker.pick(g.name, true)
		}
		if !ok {
			if first != nil {
				first.Close() // a late start resubscribes from the GOP cache
				first = nil
			}
			err := fmt.Errorf("%s: %w", h.dest, groups.ErrNoMember)
			h.setState(StateBackoff, err)
			if err.Error() != noneLog {
				h.log.Warn("forward waits for a group member", "err", err, "last_err", lastErr)
				noneLog = err.Error()
			}
			waited = true
			// A registry change (a member joined) or the old member's
			// port opening again (a restart) ends the wait early.
			if !h.waitGroup(ctx, b.Next(), probeAfter(lastErr), true) {
				break
			}
			continue
		}
		waited, noneLog = false, ""
		url, err := Expand(m.RTMP, g.key, g.param, g.hops)
		if err != nil {
			g.picker.fail(m.Node)
			h.log.Warn("forward: group member skipped", "member", m.Node, "err", err)
			lastErr = err
			continue
		}
		if from != "" {
			h.log.Info("forward moved", "from", from, "to", m.Node, "reason", reason.Error())
		}
		h.setMember(m, from != "")
		good, err := h.groupSession(ctx, first, m, url)
		first = nil
		if h.finished(ctx, err) {
			return
		}
		if good >= h.opts.GoodRun {
			b.Reset()
		}
		h.failed()
		g.picker.fail(m.Node)
		from, reason, lastErr = m.Node, err, err
		h.setState(StateBackoff, err)
		if d := g.takeMove(time.Now()); d > 0 {
			h.log.Warn("forward failed; moves are rate-limited", "err", err, "move_in", d.Round(time.Millisecond))
			if !h.waitGroup(ctx, d, false, false) {
				break
			}
		} else {
			h.log.Warn("forward failed; moving", "err", err)
		}
	}
	h.setState(StateStopped, nil)
	h.log.Info("forward stopped", "reason", stopReason(nil, ctx))
}

// groupSession is one session with member m; kick ends it early with its
// cause (the member left the group).
func (h *handler) groupSession(ctx context.Context, first *stream.Reader, m groups.Member, url string) (time.Duration, error) {
	h.url, h.target = url, hooks.Redact(url)
	log := h.log
	h.log = log.With("member", m.Node)
	defer func() { h.log = log }()
	sctx, scancel := context.WithCancelCause(ctx)
	defer scancel(nil)
	h.mu.Lock()
	h.kickFn = scancel
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.kickFn = nil
		h.mu.Unlock()
	}()
	h.setState(StateConnecting, nil)
	good, err := h.session(sctx, first)
	if cause := context.Cause(sctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		if errors.Is(err, errStreamEnded) {
			return good, err
		}
		err = cause
	}
	return good, err
}

// waitGroup sleeps d like wait; with wake, a registry change (a member
// may have joined) ends it early too. False: the handler stops.
func (h *handler) waitGroup(ctx context.Context, d time.Duration, probe, wake bool) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if wake {
		ch := h.grp.picker.wake()
		go func() {
			select {
			case <-ch:
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	h.wait(wctx, d, probe)
	return ctx.Err() == nil && !h.isGone()
}

func (h *handler) isGone() bool {
	select {
	case <-h.gone:
		return true
	default:
		return false
	}
}

// groupRoute makes the route of fs's destination group:name.
func (m *Manager) groupRoute(fs *fwdStream, name string) *groupRoute {
	pub := fs.st.Publisher()
	return &groupRoute{
		name: name, picker: m.picker, key: fs.st.Key(), param: pub.Params, hops: pub.Forwarded + 1,
		tokens: float64(m.opts.MoveBurst), filled: time.Now(),
		burst: float64(m.opts.MoveBurst), every: m.opts.MoveEvery,
	}
}

// ownsLocked reports whether this box forwards fs: with no cluster, or
// when it holds the claim on the stream (and, for a transcoder's output,
// on the stream transcoded: the output of a class another member owns is
// not this box's to forward either).
func (m *Manager) ownsLocked(fs *fwdStream) bool {
	if m.picker == nil {
		return true
	}
	dir := m.opts.Groups
	if !dir.Owns(fs.st.Key().String()) {
		return false
	}
	pub := fs.st.Publisher()
	return pub.Protocol != "transcode" || pub.Remote == "" || dir.Owns(pub.Remote)
}

// onGroupsChange runs after a registry read that changed a group or a
// claim: a stream whose claim this box won starts forwarding, one it lost
// stops, a session whose member left its group moves, and handlers
// waiting for a member look again.
func (m *Manager) onGroupsChange() {
	m.picker.onChange()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return
	}
	for _, fs := range m.streams {
		if held := !m.ownsLocked(fs); held != fs.held {
			fs.held = held
			if held {
				fs.log.Info("forward stopped: another member of the group owns the stream")
			} else {
				fs.log.Info("forward started: this box owns the stream now")
			}
			m.applyLocked(fs, m.urlsLocked(fs), false)
		}
		for _, h := range fs.handlers {
			if h.grp == nil {
				continue
			}
			h.mu.Lock()
			node := h.member
			connected := h.kickFn != nil
			h.mu.Unlock()
			if connected && node != "" && !m.picker.inGroup(h.grp.name, node) {
				h.kick(fmt.Errorf("%s: %w", node, errLeft))
			}
		}
	}
}
