package cluster

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"time"
)

// Selection rules (pure functions, tested without a registry).
const (
	// defaultCapacity stands in for max_viewers 0 when loads are compared.
	defaultCapacity = 1000
	// maxFrameAge: a stream whose last packet is older is not ready.
	maxFrameAge = 5 * time.Second
	// maxAlternates bounds the alternates an answer lists.
	maxAlternates = 8
)

// Protocols a play URL can be for.
const (
	ProtoHLS = "hls"
	ProtoFLV = "flv"
)

// view is a node as the allocator sees it.
type view struct {
	Node
	Reserved int64
	// Age is the time since the node's last heartbeat.
	Age time.Duration
}

// want is what one allocation asks for.
type want struct {
	Vhost, App, Name string
	Proto            string
	Line             string
	Tried            []string // node ids this session had
	Current          string   // the session's node now (switch)
	Stale            bool     // the view is old: skip the age check
}

// candidate is a node that can take the viewer, with its play URL.
type candidate struct {
	v    view
	path string
	load float64
}

func (c candidate) url() string { return c.v.URL + c.path }

// streamOn finds w's stream on n: the first entry for app/stream (in any
// vhost when w names none) that has a path for w's protocol and fresh
// frames, else the first entry at all.
func streamOn(n Node, w want) (s Stream, path string, ok bool) {
	for _, st := range n.Streams {
		if st.App != w.App || st.Name != w.Name || (w.Vhost != "" && st.Vhost != w.Vhost) {
			continue
		}
		p := st.HLS
		if w.Proto == ProtoFLV {
			p = st.FLV
		}
		if p != "" && st.LastFrameMs < maxFrameAge.Milliseconds() {
			return st, p, true
		}
		if !ok {
			s, ok = st, true
		}
	}
	return s, "", ok
}

// defaultPath is the play path on a box that pulls on demand (an edge, a
// stock SRS box): the URL shapes SRS and Podium share.
func defaultPath(w want) string {
	p := "/" + w.App + "/" + w.Name
	if w.Proto == ProtoFLV {
		p += ".flv"
	} else {
		p += ".m3u8"
	}
	if w.Vhost != "" && w.Vhost != "__defaultVhost__" {
		p += "?vhost=" + url.QueryEscape(w.Vhost)
	}
	return p
}

// eligible returns the nodes that can take a viewer of w now, and whether
// any node has the stream at all (false: an unknown stream).
func eligible(nodes []view, w want) (out []candidate, known bool) {
	for _, n := range nodes {
		if _, _, ok := streamOn(n.Node, w); ok && n.Kind != KindSRS {
			known = true
			break
		}
	}
	if !known {
		return nil, false
	}
	for _, n := range nodes {
		if !n.Serve || n.State != StateServing {
			continue
		}
		// Two missed heartbeats (and a quarter for the write itself):
		// suspect, no new viewers; it expires at three.
		if hb := time.Duration(n.HeartbeatMs) * time.Millisecond; !w.Stale && hb > 0 && n.Age > 2*hb+hb/4 {
			continue
		}
		load := n.Viewers + int(n.Reserved)
		if n.MaxViewers > 0 && load >= n.MaxViewers {
			continue
		}
		_, path, _ := streamOn(n.Node, w)
		// An edge pulls on demand for a player of the hub (HTTP-FLV);
		// HLS needs the class live there already. A stock SRS box is
		// taken at its word for both.
		if path == "" && (n.Pulls && w.Proto == ProtoFLV || n.Kind == KindSRS) {
			path = defaultPath(w)
		}
		if path == "" {
			continue
		}
		capacity := n.MaxViewers
		if capacity <= 0 {
			capacity = defaultCapacity
		}
		out = append(out, candidate{v: n, path: path, load: float64(load) / float64(capacity)})
	}
	return out, true
}

// narrow keeps the candidates a switch or a line request prefers: first
// those on the requested line; then nodes the session has not tried, on a
// line it has not had if there is one. An empty preference keeps all.
func narrow(cands []candidate, w want, byID map[string]view) []candidate {
	keep := func(f func(candidate) bool) {
		var sub []candidate
		for _, c := range cands {
			if f(c) {
				sub = append(sub, c)
			}
		}
		if len(sub) > 0 {
			cands = sub
		}
	}
	if w.Line != "" {
		// A line is asked for by its name ("Campus A") or its node id.
		keep(func(c candidate) bool { return c.v.Line == w.Line || c.v.ID == w.Line })
	}
	if len(w.Tried) > 0 {
		triedLines := map[string]bool{}
		for _, id := range w.Tried {
			if v, ok := byID[id]; ok {
				triedLines[v.Line] = true
			}
		}
		keep(func(c candidate) bool { return !slices.Contains(w.Tried, c.v.ID) })
		keep(func(c candidate) bool { return !triedLines[c.v.Line] })
	}
	if w.Current != "" {
		keep(func(c candidate) bool { return c.v.ID != w.Current })
	}
	return cands
}

// pickTwo is the power of two choices: two random candidates, the less
// loaded wins (a coin decides a tie). It never sends everyone to the one
// global minimum, which would herd a class's joiners onto one box between
// two heartbeats.
func pickTwo(cands []candidate, rng *rand.Rand) int {
	switch len(cands) {
	case 0:
		return -1
	case 1:
		return 0
	}
	i := rng.IntN(len(cands))
	j := rng.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	switch {
	case cands[i].load < cands[j].load:
		return i
	case cands[j].load < cands[i].load:
		return j
	case rng.IntN(2) == 0:
		return i
	default:
		return j
	}
}

// alternates lists the other candidates, least loaded first.
func alternates(all []candidate, chosen string) []candidate {
	out := make([]candidate, 0, len(all))
	for _, c := range all {
		if c.v.ID != chosen {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		switch {
		case a.load < b.load:
			return -1
		case a.load > b.load:
			return 1
		}
		return 0
	})
	if len(out) > maxAlternates {
		out = out[:maxAlternates]
	}
	return out
}
