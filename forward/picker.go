package forward

import (
	"sync"
	"time"

	"github.com/podiumlive/podium/internal/groups"
)

// pendingTTL is how long an assignment of this box counts on top of the
// registry's figures: by then the member has claimed the stream and a
// registry read has shown it (two heartbeats), or the push failed.
const pendingTTL = 10 * time.Second

// picker chooses the member of a group a stream goes to, for every
// group handler of the manager. The registry's load is up to a heartbeat
// old, so the picker adds the streams it sent a member since that member's
// figures last changed: a burst of publishes spreads instead of herding on
// the member that was least loaded at the last read (Scalelite's fix,
// kept locally). A member a push failed on is left out for every stream of
// the box for a while (down).
type picker struct {
	dir  groups.Directory
	down time.Duration

	mu      sync.Mutex
	until   map[string]time.Time // node → end of its local backoff
	pending map[string]*pending  // node → assignments the registry may not show yet
	changed chan struct{}        // closed (and replaced) by each registry change
}

// pending is what this box sent one member that the registry's figures
// may not count yet.
type pending struct {
	base int         // the member's Streams when last reconciled
	at   []time.Time // assignments, oldest first
}

func newPicker(dir groups.Directory, down time.Duration) *picker {
	return &picker{dir: dir, down: down, until: make(map[string]time.Time),
		pending: make(map[string]*pending), changed: make(chan struct{})}
}

// pick returns the least loaded live member of group, counting this box's
// recent assignments, and records the assignment. Members in local
// backoff are skipped unless anyDown; ok is false when no member fits.
func (p *picker) pick(group string, anyDown bool) (groups.Member, bool) {
	ms := p.dir.Members(group)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	per := perStream(ms)
	best, bestLoad := -1, 0.0
	for i, m := range ms {
		if m.RTMP == "" || (!anyDown && p.until[m.Node].After(now)) {
			continue
		}
		load := m.Load + float64(p.extra(m, now))*per(m)
		// Strictly less: ties keep the directory's order.
		if best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	if best < 0 {
		return groups.Member{}, false
	}
	m := ms[best]
	pe := p.pending[m.Node]
	if pe == nil {
		pe = &pending{base: m.Streams}
		p.pending[m.Node] = pe
	}
	pe.at = append(pe.at, now)
	return m, true
}

// extra reconciles m's pending assignments with its figures and returns
// how many the registry does not count yet: streams it gained since the
// last look are taken as this box's oldest assignments landing.
func (p *picker) extra(m groups.Member, now time.Time) int {
	pe := p.pending[m.Node]
	if pe == nil {
		return 0
	}
	if gained := m.Streams - pe.base; gained > 0 {
		pe.at = pe.at[min(gained, len(pe.at)):]
	}
	pe.base = m.Streams
	for len(pe.at) > 0 && now.Sub(pe.at[0]) > pendingTTL {
		pe.at = pe.at[1:]
	}
	if len(pe.at) == 0 {
		delete(p.pending, m.Node)
		return 0
	}
	return len(pe.at)
}

// perStream returns what one more stream adds to a member's Load: its own
// load per stream, else the group's average, else 1 (an idle group: the
// picker then takes turns).
func perStream(ms []groups.Member) func(groups.Member) float64 {
	var sum float64
	var n int
	for _, m := range ms {
		if m.Streams > 0 && m.Load > 0 {
			sum += m.Load / float64(m.Streams)
			n++
		}
	}
	avg := 1.0
	if n > 0 {
		avg = sum / float64(n)
	}
	return func(m groups.Member) float64 {
		if m.Streams > 0 && m.Load > 0 {
			return m.Load / float64(m.Streams)
		}
		return avg
	}
}

// fail leaves node out of this box's picks for the backoff.
func (p *picker) fail(node string) {
	p.mu.Lock()
	p.until[node] = time.Now().Add(p.down)
	p.mu.Unlock()
}

// isDown reports whether node is in local backoff.
func (p *picker) isDown(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.until[node].After(time.Now())
}

// wake returns a channel closed at the next registry change.
func (p *picker) wake() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// onChange wakes the handlers waiting for a member and forgets backoffs
// that ended.
func (p *picker) onChange() {
	now := time.Now()
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	for n, t := range p.until {
		if !t.After(now) {
			delete(p.until, n)
		}
	}
	p.mu.Unlock()
}

// inGroup reports whether node is still a live member of group.
func (p *picker) inGroup(group, node string) bool {
	ms := p.dir.Members(group)
	for _, m := range ms {
		if m.Node == node {
			return true
		}
	}
	// An empty answer is a registry that knows nothing right now: keep
	// the routes that work.
	return len(ms) == 0
}
