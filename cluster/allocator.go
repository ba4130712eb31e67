package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// PlayRequest is one GET /api/v1/play.
type PlayRequest struct {
	Vhost, App, Stream string
	Proto              string // hls (default) | flv
	Line               string
	Token              string // required when play_secret is set
}

// Answer is the allocator's reply (the API's "data").
type Answer struct {
	Session    string      `json:"session"`
	Node       string      `json:"node"`
	Line       string      `json:"line"`
	URL        string      `json:"url"`
	Alternates []Alternate `json:"alternates"`
	// Stale: the registry could not be read; this comes from the last
	// view.
	Stale bool `json:"stale,omitempty"`
	// OnlyLine: a switch found no other node.
	OnlyLine bool `json:"only_line,omitempty"`
}

// Alternate is another node that could serve the session.
type Alternate struct {
	Node string `json:"node"`
	Line string `json:"line"`
	URL  string `json:"url"`
}

// session is what the registry keeps per play session.
type session struct {
	V       int      `json:"v"`
	Vhost   string   `json:"vhost"`
	App     string   `json:"app"`
	Stream  string   `json:"stream"`
	Proto   string   `json:"proto"`
	Line    string   `json:"line,omitempty"`
	Node    string   `json:"node"`
	Tried   []string `json:"tried"`
	Created int64    `json:"created"`
}

// maxTried bounds a session's tried list (a student pressing the button
// all class long).
const maxTried = 64

// Play allocates a node for a new viewer.
func (c *Cluster) Play(ctx context.Context, r PlayRequest) (Answer, error) {
	if r.Proto == "" {
		r.Proto = ProtoHLS
	}
	if c.cfg.PlaySecret != "" && !CheckToken(c.cfg.PlaySecret, r.App, r.Stream, r.Token, time.Now()) {
		return Answer{}, ErrBadToken
	}
	s := session{V: 1, Vhost: r.Vhost, App: r.App, Stream: r.Stream, Proto: r.Proto, Line: r.Line, Created: time.Now().Unix()}
	return c.allocate(ctx, "ps_"+randomID(12), s, false)
}

// Switch moves session sid to a node it has not tried yet while one
// exists; when it has tried them all, it starts a new round.
func (c *Cluster) Switch(ctx context.Context, sid string) (Answer, error) {
	if !validSession(sid) {
		return Answer{}, ErrNoSession
	}
	b, err := c.reg.Session(ctx, sid)
	if err != nil && !errors.Is(err, ErrNoSession) {
		b, err = c.fallback.Session(ctx, sid) // registry down: this box's own
	} else if errors.Is(err, ErrNoSession) {
		if fb, ferr := c.fallback.Session(ctx, sid); ferr == nil {
			b, err = fb, nil
		}
	}
	if err != nil {
		return Answer{}, ErrNoSession
	}
	var s session
	if json.Unmarshal(b, &s) != nil || s.V != 1 || s.App == "" {
		return Answer{}, ErrNoSession
	}
	return c.allocate(ctx, sid, s, true)
}

func validSession(sid string) bool {
	if len(sid) < 4 || len(sid) > 64 || !strings.HasPrefix(sid, "ps_") {
		return false
	}
	for _, r := range sid[3:] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func (c *Cluster) allocate(ctx context.Context, sid string, s session, isSwitch bool) (Answer, error) {
	views, stale := c.current(ctx)
	w := want{Vhost: s.Vhost, App: s.App, Name: s.Stream, Proto: s.Proto, Line: s.Line, Stale: stale}
	all, known := eligible(views, w)
	if !known {
		return Answer{}, ErrUnknownStream
	}
	if len(all) == 0 {
		return Answer{}, ErrNoNode
	}
	byID := make(map[string]view, len(views))
	for _, v := range views {
		byID[v.ID] = v
	}
	pool := all
	only := false
	if isSwitch {
		w.Tried, w.Current = s.Tried, s.Node
		untried := slices.ContainsFunc(all, func(c candidate) bool { return !slices.Contains(s.Tried, c.v.ID) })
		if !untried {
			// Every node tried: a new round, away from the current one.
			s.Tried = []string{s.Node}
			w.Tried = s.Tried
		}
		pool = narrow(all, w, byID)
		only = len(all) == 1 && all[0].v.ID == s.Node
	} else {
		pool = narrow(all, w, byID)
	}
	c.mu.Lock()
	i := pickTwo(pool, c.rng)
	c.mu.Unlock()
	chosen := pool[i]
	s.Node = chosen.v.ID
	if !slices.Contains(s.Tried, s.Node) {
		s.Tried = append(s.Tried, s.Node)
	}
	if len(s.Tried) > maxTried {
		s.Tried = s.Tried[len(s.Tried)-maxTried:]
	}
	b, err := json.Marshal(s)
	if err != nil {
		return Answer{}, fmt.Errorf("session: %w", err)
	}
	resTTL := reserveFor
	if chosen.v.Kind == KindSRS {
		resTTL = c.cfg.SessionTTL // its load is only what was counted
	}
	_ = c.fallback.Assign(ctx, chosen.v.ID, resTTL, sid, b, c.cfg.SessionTTL)
	if !stale {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err = c.reg.Assign(actx, chosen.v.ID, resTTL, sid, b, c.cfg.SessionTTL)
		cancel()
		stale = err != nil
	}
	// Counted on the cached view too, until the next read brings the
	// registry's count.
	c.mu.Lock()
	c.pending[chosen.v.ID]++
	c.mu.Unlock()
	a := Answer{Session: sid, Node: chosen.v.ID, Line: chosen.v.Line, URL: c.sign(chosen.url(), s), Stale: stale, OnlyLine: only,
		Alternates: []Alternate{}}
	for _, alt := range alternates(all, chosen.v.ID) {
		a.Alternates = append(a.Alternates, Alternate{Node: alt.v.ID, Line: alt.v.Line, URL: c.sign(alt.url(), s)})
	}
	return a, nil
}

// sign adds a play token to u when play_secret is set.
func (c *Cluster) sign(u string, s session) string {
	if c.cfg.PlaySecret == "" {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "token=" + SignToken(c.cfg.PlaySecret, s.App, s.Stream, time.Now().Add(c.cfg.SessionTTL))
}

// NodeInfo is one node as GET /api/v1/cluster/nodes shows it.
type NodeInfo struct {
	Node
	// NodeID repeats id under the name the allocator's answers use.
	NodeID         string `json:"node"`
	Reserved       int64  `json:"reserved"`
	HeartbeatAgeMs int64  `json:"heartbeat_age_ms"`
	Self           bool   `json:"self"`
}

// Nodes lists every node the registry holds (stale: from the last view).
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, bool) {
	return c.nodesFrom(c.current(ctx))
}

func (c *Cluster) nodesFrom(views []view, stale bool) ([]NodeInfo, bool) {
	out := make([]NodeInfo, 0, len(views))
	for _, v := range views {
		if v.Streams == nil {
			v.Streams = []Stream{}
		}
		out = append(out, NodeInfo{Node: v.Node, NodeID: v.ID, Reserved: v.Reserved, HeartbeatAgeMs: v.Age.Milliseconds(), Self: v.ID == c.cfg.Node})
	}
	return out, stale
}

// StreamInfo is one stream and the nodes that have it.
type StreamInfo struct {
	Vhost   string           `json:"vhost"`
	App     string           `json:"app"`
	Stream  string           `json:"stream"`
	Viewers int              `json:"viewers"`
	Nodes   []StreamNodeInfo `json:"nodes"`
}

// StreamNodeInfo is a stream on one node.
type StreamNodeInfo struct {
	Node        string `json:"node"`
	Line        string `json:"line"`
	Ready       bool   `json:"ready"`
	HLS         string `json:"hls,omitempty"`
	FLV         string `json:"flv,omitempty"`
	LastFrameMs int64  `json:"last_frame_ms"`
	Viewers     int    `json:"viewers"`
}

// Streams lists every stream the cluster's nodes report.
func (c *Cluster) Streams(ctx context.Context) ([]StreamInfo, bool) {
	return c.streamsFrom(c.current(ctx))
}

func (c *Cluster) streamsFrom(views []view, stale bool) ([]StreamInfo, bool) {
	idx := map[string]int{}
	var out []StreamInfo
	for _, v := range views {
		for _, s := range v.Streams {
			k := s.Vhost + "/" + s.App + "/" + s.Name
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, StreamInfo{Vhost: s.Vhost, App: s.App, Stream: s.Name, Nodes: []StreamNodeInfo{}})
			}
			out[i].Viewers += s.Viewers
			out[i].Nodes = append(out[i].Nodes, StreamNodeInfo{
				Node: v.ID, Line: v.Line, Ready: (s.HLS != "" || s.FLV != "") && s.LastFrameMs < maxFrameAge.Milliseconds(),
				HLS: s.HLS, FLV: s.FLV, LastFrameMs: s.LastFrameMs, Viewers: s.Viewers,
			})
		}
	}
	slices.SortFunc(out, func(a, b StreamInfo) int {
		return strings.Compare(a.Vhost+"/"+a.App+"/"+a.Stream, b.Vhost+"/"+b.App+"/"+b.Stream)
	})
	if out == nil {
		out = []StreamInfo{}
	}
	return out, stale
}

// Inspect reads what the registry holds, for `podium cluster`: every
// node, every stream and every group of origins, decoded as the
// allocator and the Directory decode them.
func Inspect(ctx context.Context, reg Registry, log *slog.Logger) ([]NodeInfo, []StreamInfo, []GroupInfo, error) {
	c := New(reg, Config{}, func() Local { return Local{} }, log)
	views, err := c.refresh(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := c.groupRound(ctx, Node{}, views); err != nil {
		return nil, nil, nil, err
	}
	nodes, _ := c.nodesFrom(c.view, false)
	streams, _ := c.streamsFrom(c.view, false)
	groups, _ := c.Groups()
	return nodes, streams, groups, nil
}
