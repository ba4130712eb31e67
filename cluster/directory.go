package cluster

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/podiumlive/podium/internal/groups"
)

// The groups.Directory: the registry's groups of origins as the last
// heartbeat read them. Every answer comes from that snapshot (an
// atomic pointer, replaced after each read): none waits on Redis, and
// with Redis unreachable the answers are the last known ones.

// Load weights (see Load).
const (
	// cpuHigh is the CPU share above which CPU dominates the load.
	cpuHigh = 0.8
	// cpuHighWeight: each point of CPU above cpuHigh weighs 0.2 classes.
	cpuHighWeight = 20.0
)

// Load is what a member of a group spends, the order in which a
// group:NAME forward destination or edge origin tries the members (lower
// takes the next class):
//
//	classes + transcodes + cpu + 20·max(0, cpu − 0.8)
//
// A class published to the box costs 1 and 1 more when the box
// transcodes it, so a master's cost is what it transcodes; CPU (0–1)
// breaks ties between boxes with as many classes, and above 80% it
// dominates: a box at 100% CPU weighs 4 classes more (a box whose
// encoder is on a GPU, or that is busy with something else, is judged by
// what its CPU says, not only by its count).
func Load(n Node) float64 {
	return float64(classes(n)+n.Transcodes) + n.CPU + cpuHighWeight*max(0, n.CPU-cpuHigh)
}

// classes counts the streams published to n (not pulled from another
// box, not the output of its own transcode).
func classes(n Node) int {
	c := 0
	for _, s := range n.Streams {
		if !s.Pulled && !s.Transcoded {
			c++
		}
	}
	return c
}

// GroupInfo is one group as the API shows it.
type GroupInfo struct {
	Name string `json:"name"`
	// Members are the live members (serving, heartbeat fresh), least
	// loaded first.
	Members []MemberInfo `json:"members"`
	// Owners maps each claimed stream (vhost/app/stream) to its member.
	Owners map[string]string `json:"owners"`
}

// MemberInfo is one member of a group with its load and its inputs.
type MemberInfo struct {
	Node       string  `json:"node"`
	RTMP       string  `json:"rtmp"`
	Load       float64 `json:"load"`
	Streams    int     `json:"streams"`
	Transcodes int     `json:"transcodes"`
	CPU        float64 `json:"cpu"`
}

// groupsView is one registry read of the groups.
type groupsView struct {
	// read: the groups this read covered (a group absent from the
	// previous read shows no moves).
	read map[string]bool
	// members: group → live members, least loaded first.
	members map[string][]groups.Member
	// nodes: every node in a group in the read (any state), by id: an
	// owner that is draining still has its classes.
	nodes map[string]Node
	// owners: group → stream key → node.
	owners map[string]map[string]string
	infos  []GroupInfo
}

// member is n as the Directory answers it.
func member(n Node) groups.Member {
	return groups.Member{Node: n.ID, RTMP: n.RTMP, Load: Load(n), Streams: classes(n)}
}

// buildGroups makes the snapshot from a read of the nodes and the claims
// of the groups named in owners.
func buildGroups(views []view, owners map[string]map[string]string, live func(view) bool) *groupsView {
	g := &groupsView{read: map[string]bool{}, members: map[string][]groups.Member{}, nodes: map[string]Node{}, owners: owners}
	if g.owners == nil {
		g.owners = map[string]map[string]string{}
	}
	for name := range g.owners {
		g.read[name] = true
	}
	infos := map[string]*GroupInfo{}
	info := func(name string) *GroupInfo {
		if infos[name] == nil {
			o := g.owners[name]
			if o == nil {
				o = map[string]string{}
			}
			infos[name] = &GroupInfo{Name: name, Members: []MemberInfo{}, Owners: o}
		}
		return infos[name]
	}
	for _, v := range views {
		if v.Group == "" || v.Kind != KindPodium {
			continue
		}
		g.nodes[v.ID] = v.Node
		in := info(v.Group)
		if !live(v) {
			continue
		}
		m := member(v.Node)
		g.members[v.Group] = append(g.members[v.Group], m)
		in.Members = append(in.Members, MemberInfo{Node: m.Node, RTMP: m.RTMP, Load: m.Load, Streams: m.Streams, Transcodes: v.Transcodes, CPU: v.CPU})
	}
	for name := range g.owners {
		info(name)
	}
	byLoad := func(a, b groups.Member) int { return cmp.Or(cmp.Compare(a.Load, b.Load), cmp.Compare(a.Node, b.Node)) }
	for name, ms := range g.members {
		slices.SortFunc(ms, byLoad)
		g.members[name] = ms
	}
	for _, name := range slices.Sorted(maps.Keys(infos)) {
		in := infos[name]
		slices.SortFunc(in.Members, func(a, b MemberInfo) int {
			return byLoad(groups.Member{Node: a.Node, Load: a.Load}, groups.Member{Node: b.Node, Load: b.Load})
		})
		g.infos = append(g.infos, *in)
	}
	return g
}

// liveMember: its entry has not expired (it is in the read) and it is
// serving. A member that is late with a heartbeat stays one (on a busy
// box a beat can be late without the box being gone): forward and the
// edge take a refused connection as "member dead" at once and go to the
// next member, and the entry expires after three heartbeats.
func (c *Cluster) liveMember(v view) bool { return v.State == StateServing }

// fresh: the node's heartbeat is not suspect (two missed and a quarter,
// as the allocator's eligibility): a class whose owner's claim lapsed
// while the owner was this late moved because the owner "expired".
func fresh(v view) bool {
	hb := time.Duration(v.HeartbeatMs) * time.Millisecond
	return hb <= 0 || v.Age <= 2*hb+hb/4
}

// sameMembers reports whether two reads have the same members and owners
// in every group (loads aside: they move every heartbeat).
func sameMembers(a, b *groupsView) bool {
	if len(a.members) != len(b.members) || len(a.owners) != len(b.owners) {
		return false
	}
	for name, am := range a.members {
		bm := b.members[name]
		if len(am) != len(bm) {
			return false
		}
		key := func(m groups.Member) string { return m.Node + " " + m.RTMP }
		as, bs := make([]string, len(am)), make([]string, len(bm))
		for i := range am {
			as[i], bs[i] = key(am[i]), key(bm[i])
		}
		slices.Sort(as)
		slices.Sort(bs)
		if !slices.Equal(as, bs) {
			return false
		}
	}
	for name, ao := range a.owners {
		bo, ok := b.owners[name]
		if !ok || !maps.Equal(ao, bo) {
			return false
		}
	}
	return true
}

// Members implements groups.Directory.
func (c *Cluster) Members(group string) []groups.Member {
	g := c.groups.Load()
	if g == nil {
		return nil
	}
	return slices.Clone(g.members[group])
}

// Owner implements groups.Directory: the member holding the claim on key,
// when its node is in the last read (a dead member's claim lapses by
// itself; until then its node is still listed, and a caller that cannot
// reach it goes on to the next member).
func (c *Cluster) Owner(group, key string) (groups.Member, bool) {
	g := c.groups.Load()
	if g == nil {
		return groups.Member{}, false
	}
	id, ok := g.owners[group][key]
	if !ok {
		return groups.Member{}, false
	}
	n, ok := g.nodes[id]
	if !ok || n.Group != group {
		return groups.Member{}, false
	}
	return member(n), true
}

// Owns implements groups.Directory: true when the box is in no group,
// when it holds the claim on key, or when nobody claims key in the last
// read (a stream published since is claimed at once, and the box keeps
// it until another member's claim shows).
func (c *Cluster) Owns(key string) bool {
	if c.cfg.Group == "" {
		return true
	}
	g := c.groups.Load()
	if g == nil {
		return true
	}
	id, ok := g.owners[c.cfg.Group][key]
	return !ok || id == c.cfg.Node
}

// OnChange implements groups.Directory: fn runs on the heartbeat's
// goroutine after a read that changed a group's members or an owner; it
// must not block.
func (c *Cluster) OnChange(fn func()) {
	c.gmu.Lock()
	c.onChange = append(c.onChange, fn)
	c.gmu.Unlock()
}

// Self implements groups.Directory.
func (c *Cluster) Self() string { return c.cfg.Node }

// Groups lists every group in the last read (members least loaded
// first, and who owns which stream) and the recent moves, newest last.
func (c *Cluster) Groups() ([]GroupInfo, []Move) {
	var out []GroupInfo
	if g := c.groups.Load(); g != nil {
		out = make([]GroupInfo, 0, len(g.infos))
		for _, in := range g.infos {
			in.Members = slices.Clone(in.Members)
			in.Owners = maps.Clone(in.Owners)
			out = append(out, in)
		}
	}
	if out == nil {
		out = []GroupInfo{}
	}
	return out, c.moves.list()
}
