package edge

import (
	"net/url"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// Origins that name a group of the registry ("group:masters") are
// resolved at each pick from the Directory, never cached: the member that
// owns the stream (it has it from a publisher) first, then, on an edge
// vhost, the group's other live members by load (one of them may have
// the class already: the relay moves a dead master's classes at once,
// the registry learns it a heartbeat later). This box and members in
// local backoff are skipped. A master pulls only from the owner: a member
// that is itself pulling a class never claims it, so no chain or loop
// forms between members.
//
// Moves: a pull follows the class when its upstream fails or goes idle
// (it resolves again, the new owner first). A working upstream is never
// dropped because the claim moved: if it still sends media it still has
// the class (a stale owner's stream ends, or stalls, and then the pull
// moves). While a pull that was live looks for the class again it retries
// every retryPause, at once when the directory changes, for up to
// moveWait.

// NoWaitParam, on a pull from a group member, makes the member answer
// "not found" at once when it does not have the stream, instead of
// waiting for a publish or pulling it on the puller's behalf (the RTMP
// server strips it; the names must match).
const NoWaitParam = "podium_nowait"

const (
	// retryPause is how long a pull of a group waits before asking the
	// members again when none had the stream.
	retryPause = 250 * time.Millisecond
	// moveWait is how long a live pull of a group keeps looking for its
	// stream after losing it: the relay moves it within 3 s; the registry
	// lists the new owner within two heartbeats.
	moveWait = 10 * time.Second
)

// candidate is an origin to try: a configured entry, or a group member's
// RTMP address (member: pulled with NoWaitParam).
type candidate struct {
	name   string
	member bool
}

// originKey is the stream's key as its origins name it (the origin vhost).
func (p *pull) originKey() string {
	vhost := p.cfg.OriginVhost
	if vhost == "" {
		vhost = p.key.Vhost
	}
	return stream.Key{Vhost: vhost, App: p.key.App, Name: p.key.Name}.String()
}

// next picks the origin to try, skipping those tried this round: the
// owners of the stream in the vhost's groups, then the static origins
// (least busy first), then (not on a master) the groups' other members by
// load. Origins in backoff are skipped; when every candidate is in
// backoff and none was tried this round, the one whose backoff ends first.
func (p *pull) next(tried map[string]bool, prev string) (candidate, bool) {
	owners, members := p.groupCandidates()
	for _, m := range owners {
		if !tried[m] && p.e.origins.healthy(m) {
			return candidate{name: m, member: true}, true
		}
	}
	if s := p.e.origins.pick(p.cfg.Origins, tried, prev, p.key.String()); s != "" {
		return candidate{name: s}, true
	}
	for _, m := range members {
		if !tried[m] && p.e.origins.healthy(m) {
			return candidate{name: m, member: true}, true
		}
	}
	if len(tried) > 0 {
		return candidate{}, false
	}
	all := append(append(append([]string(nil), owners...), p.cfg.Origins...), members...)
	s := p.e.origins.soonest(all)
	if s == "" {
		return candidate{}, false
	}
	static := false
	for _, o := range p.cfg.Origins {
		static = static || o == s
	}
	return candidate{name: s, member: !static}, true
}

// groupCandidates resolves the vhost's groups: the owners of the stream,
// and (not on a master) the other members, least loaded first. This box
// is never one of them.
func (p *pull) groupCandidates() (owners, members []string) {
	dir := p.e.opts.Directory
	if dir == nil || len(p.cfg.Groups) == 0 {
		return nil, nil
	}
	self, key := dir.Self(), p.originKey()
	seen := map[string]bool{}
	for _, g := range p.cfg.Groups {
		if m, ok := dir.Owner(g, key); ok && m.Node != self && m.RTMP != "" && !seen[m.RTMP] {
			seen[m.RTMP] = true
			owners = append(owners, m.RTMP)
		}
	}
	if p.cfg.OwnerOnly {
		return owners, nil
	}
	for _, g := range p.cfg.Groups {
		for _, m := range dir.Members(g) {
			if m.Node != self && m.RTMP != "" && !seen[m.RTMP] {
				seen[m.RTMP] = true
				members = append(members, m.RTMP)
			}
		}
	}
	return owners, members
}

// changes returns a channel closed at the directory's next change.
func (e *Edge) changes() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// directoryChanged wakes the pulls waiting for a member to have their
// stream.
func (e *Edge) directoryChanged() {
	e.mu.Lock()
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// Redirect answers, for an RTMP play of key on a master vhost with
// cluster.redirect, the rtmp:// URL of the member that owns the stream
// (SRS's RTMP 302; params are the play's query, kept), or "" to play
// here: the stream is live here, nobody else owns it, or the vhost does
// not redirect.
func (e *Edge) Redirect(key stream.Key, params url.Values) string {
	cfg := e.vhosts[key.Vhost]
	dir := e.opts.Directory
	if cfg == nil || !cfg.Redirect || dir == nil || e.hub.Get(key) != nil {
		return ""
	}
	for _, g := range cfg.Groups {
		m, ok := dir.Owner(g, key.String())
		if !ok || m.Node == dir.Self() || m.RTMP == "" {
			continue
		}
		q := url.Values{}
		for k, v := range params {
			if k != "vhost" {
				q[k] = v
			}
		}
		if key.Vhost != streamurl.DefaultVhost {
			q.Set("vhost", key.Vhost)
		}
		u := url.URL{Scheme: "rtmp", Host: m.RTMP, Path: "/" + key.App + "/" + key.Name, RawQuery: q.Encode()}
		return u.String()
	}
	return ""
}

// Yield stops the pull of key on a master vhost so that a publisher can
// take the stream (the relay moved the class here): it reports whether a
// pull gave way (the caller then publishes again). It waits for the pull
// to unpublish, up to a second.
func (e *Edge) Yield(key stream.Key) bool {
	e.mu.Lock()
	p := e.pulls[key]
	e.mu.Unlock()
	if p == nil || !p.cfg.OwnerOnly {
		return false
	}
	p.cancel(errYield)
	select {
	case <-p.done:
		return true
	case <-time.After(time.Second):
		return false
	}
}
