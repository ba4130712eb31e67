package cluster

import (
	"context"
	"slices"
	"time"
)

// The claim round: after each heartbeat's write and read, a box in a
// group releases the claims of streams it no longer has, claims every
// stream it has (not a pulled copy), then reads the claims of every
// group the read names; the Directory's snapshot is rebuilt from that.
// Nudge runs a heartbeat at once (a publish or an unpublish on the hub),
// so a released class is free for the next owner within milliseconds,
// not a heartbeat.

// claimTTL is how long a claim lives unrefreshed: two and a half
// heartbeats, so one missed beat keeps it and a dead owner's claim lapses
// (2.5 × heartbeat) just before its node entry (3 ×). A dead member is
// judged suspect at 2.25 heartbeats, so its lapsed claims read "expired".
func (c *Cluster) claimTTL() time.Duration { return c.cfg.Heartbeat * 5 / 2 }

// Nudge asks the heartbeat loop for a beat now (coalesced; never
// blocks): call it when a stream is published or unpublished.
func (c *Cluster) Nudge() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// claimKeys are the streams this box claims: all but pulled copies.
func claimKeys(streams []Stream) []string {
	keys := make([]string, 0, len(streams))
	for _, s := range streams {
		if !s.Pulled {
			keys = append(keys, s.Key())
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// groupRound claims self's streams and rebuilds the groups snapshot from
// views (the read just made) and the claims.
func (c *Cluster) groupRound(ctx context.Context, self Node, views []view) error {
	names := []string{}
	for _, v := range views {
		if v.Group != "" && v.Kind == KindPodium {
			names = append(names, v.Group)
		}
	}
	if g := c.cfg.Group; g != "" {
		names = append(names, g)
		keys := claimKeys(self.Streams)
		var gone []string
		for k := range c.claimed {
			if !slices.Contains(keys, k) {
				gone = append(gone, k)
			}
		}
		if len(gone) > 0 {
			if err := c.reg.Release(ctx, g, c.cfg.Node, gone); err != nil {
				return err
			}
			for _, k := range gone {
				delete(c.claimed, k)
			}
		}
		held, err := c.reg.Claim(ctx, g, c.cfg.Node, keys, c.claimTTL())
		if err != nil {
			return err
		}
		clear(c.claimed)
		for k, n := range held {
			if n == c.cfg.Node {
				c.claimed[k] = true
			}
		}
	}
	var owners map[string]map[string]string
	if len(names) > 0 {
		var err error
		if owners, err = c.reg.Owners(ctx, names); err != nil {
			return err
		}
	}
	c.setGroups(views, owners)
	return nil
}

// setGroups installs the snapshot, logs the moves it shows and tells the
// OnChange callbacks when members or owners changed.
func (c *Cluster) setGroups(views []view, owners map[string]map[string]string) {
	next := buildGroups(views, owners, c.liveMember)
	prev := c.groups.Swap(next)
	byID := make(map[string]view, len(views))
	for _, v := range views {
		byID[v.ID] = v
	}
	c.moves.observe(prev, next, func(from, key string) string {
		v, ok := byID[from]
		if !ok || !fresh(v) {
			return MoveExpired
		}
		for _, s := range v.Streams {
			if !s.Pulled && s.Key() == key {
				return MoveTaken
			}
		}
		return MoveReleased
	}, time.Now(), c.log)
	if prev != nil && sameMembers(prev, next) {
		return
	}
	c.gmu.Lock()
	fns := slices.Clone(c.onChange)
	c.gmu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// releaseAll gives up this box's claims (a clean shutdown), so another
// member can claim its classes at once.
func (c *Cluster) releaseAll(ctx context.Context) {
	if c.cfg.Group == "" || len(c.claimed) == 0 {
		return
	}
	keys := make([]string, 0, len(c.claimed))
	for k := range c.claimed {
		keys = append(keys, k)
	}
	if c.reg.Release(ctx, c.cfg.Group, c.cfg.Node, keys) == nil {
		clear(c.claimed)
	}
}
