package cluster

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxMemorySessions bounds the in-memory registry's sessions: past it,
// expired ones are swept and then the oldest go.
const maxMemorySessions = 200_000

// Memory is the in-memory Registry: a box alone, or a test. The clock is
// injectable so the selection tests can age entries.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	nodes    map[string]memNode
	reserved map[string]memCount
	sessions map[string]memValue
	// claims: group → stream key → holder.
	claims map[string]map[string]memClaim
}

type memClaim struct {
	node    string
	expires time.Time
}

type memNode struct {
	instance string
	value    []byte
	expires  time.Time
}

type memCount struct {
	n       int64
	expires time.Time
}

type memValue struct {
	value   []byte
	expires time.Time
}

// NewMemory returns an empty in-memory registry on the wall clock (now
// nil) or on now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, nodes: map[string]memNode{}, reserved: map[string]memCount{}, sessions: map[string]memValue{}, claims: map[string]map[string]memClaim{}}
}

// Announce implements Registry.
func (m *Memory) Announce(_ context.Context, id, instance string, value []byte, ttl time.Duration, joined int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if cur, ok := m.nodes[id]; ok && cur.expires.After(now) && cur.instance != instance {
		return ErrNodeTaken
	}
	m.nodes[id] = memNode{instance: instance, value: slices.Clone(value), expires: now.Add(ttl)}
	if r, ok := m.reserved[id]; ok && joined > 0 {
		r.n = max(0, r.n-joined)
		m.reserved[id] = r
	}
	return nil
}

// Leave implements Registry.
func (m *Memory) Leave(_ context.Context, id, instance string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.nodes[id]; ok && cur.instance == instance {
		delete(m.nodes, id)
		delete(m.reserved, id)
	}
	return nil
}

// Nodes implements Registry.
func (m *Memory) Nodes(context.Context) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Entry, 0, len(m.nodes))
	for id, n := range m.nodes {
		if !n.expires.After(now) {
			delete(m.nodes, id)
			continue
		}
		e := Entry{ID: id, Value: slices.Clone(n.value), TTLLeft: n.expires.Sub(now)}
		if r, ok := m.reserved[id]; ok && r.expires.After(now) {
			e.Reserved = r.n
		}
		out = append(out, e)
	}
	sortEntries(out)
	return out, nil
}

// Assign implements Registry.
func (m *Memory) Assign(_ context.Context, node string, resTTL time.Duration, sid string, session []byte, sessTTL time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	r := m.reserved[node]
	if !r.expires.After(now) {
		r.n = 0
	}
	m.reserved[node] = memCount{n: r.n + 1, expires: now.Add(resTTL)}
	if len(m.sessions) >= maxMemorySessions {
		m.sweepLocked(now)
	}
	m.sessions[sid] = memValue{value: slices.Clone(session), expires: now.Add(sessTTL)}
	return nil
}

func (m *Memory) sweepLocked(now time.Time) {
	var oldest string
	var at time.Time
	for k, v := range m.sessions {
		if !v.expires.After(now) {
			delete(m.sessions, k)
			continue
		}
		if oldest == "" || v.expires.Before(at) {
			oldest, at = k, v.expires
		}
	}
	if len(m.sessions) >= maxMemorySessions && oldest != "" {
		delete(m.sessions, oldest)
	}
}

// Session implements Registry.
func (m *Memory) Session(_ context.Context, sid string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.sessions[sid]
	if !ok || !v.expires.After(m.now()) {
		delete(m.sessions, sid)
		return nil, ErrNoSession
	}
	return slices.Clone(v.value), nil
}

func sortEntries(e []Entry) {
	slices.SortFunc(e, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
}

// Close implements Registry.
func (m *Memory) Close() error { return nil }

// Claim implements Registry.
func (m *Memory) Claim(_ context.Context, group, node string, keys []string, ttl time.Duration) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	g := m.claims[group]
	if g == nil {
		g = map[string]memClaim{}
		m.claims[group] = g
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		cur, ok := g[k]
		if !ok || !cur.expires.After(now) || cur.node == node {
			cur = memClaim{node: node, expires: now.Add(ttl)}
			g[k] = cur
		}
		out[k] = cur.node
	}
	return out, nil
}

// Release implements Registry.
func (m *Memory) Release(_ context.Context, group, node string, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.claims[group]
	for _, k := range keys {
		if cur, ok := g[k]; ok && cur.node == node {
			delete(g, k)
		}
	}
	return nil
}

// Owners implements Registry.
func (m *Memory) Owners(_ context.Context, groups []string) (map[string]map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := map[string]map[string]string{}
	for _, name := range boundGroups(groups) {
		owners := map[string]string{}
		keys := make([]string, 0, len(m.claims[name]))
		for k, c := range m.claims[name] {
			if !c.expires.After(now) {
				delete(m.claims[name], k)
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys) // bounded as Redis bounds its index (which goes by expiry)
		for _, k := range keys[:min(len(keys), maxClaims)] {
			owners[k] = m.claims[name][k].node
		}
		out[name] = owners
	}
	return out, nil
}
