package edge

import (
	"hash/fnv"
	"sort"
	"sync"
	"time"
)

// origins is the box's view of its origins, shared by every pull: an
// origin that failed is skipped by every stream for the backoff (SRS keeps
// this per stream, and every new stream tries the first origin again:
// srs#4511, #4187), and each stream picks the least busy healthy origin,
// ties spread by the stream's name, so load spreads.
type origins struct {
	backoff time.Duration
	now     func() time.Time

	mu    sync.Mutex
	state map[string]*originState
}

type originState struct {
	until   time.Time // skipped until then
	lastErr string
	pulls   int // active pulls from it
}

func newOrigins(backoff time.Duration) *origins {
	return &origins{backoff: backoff, now: time.Now, state: map[string]*originState{}}
}

func (o *origins) get(name string) *originState {
	s := o.state[name]
	if s == nil {
		s = &originState{}
		o.state[name] = s
	}
	return s
}

// failed puts an origin into backoff.
func (o *origins) failed(name string, err error) {
	o.mu.Lock()
	s := o.get(name)
	s.until = o.now().Add(o.backoff)
	s.lastErr = err.Error()
	o.mu.Unlock()
}

// busy adds d to the origin's active pulls.
func (o *origins) busy(name string, d int) {
	o.mu.Lock()
	s := o.get(name)
	s.pulls += d
	if d > 0 {
		s.until = time.Time{} // it works
	}
	o.mu.Unlock()
}

// pick chooses the next origin of list for the stream named key, among
// those not tried yet: a healthy one, the least busy, ties broken by a
// rotation that the stream's name picks; prev (the origin that just
// failed, "" for none) goes last. It returns "" when every untried origin
// is in backoff.
func (o *origins) pick(list []string, tried map[string]bool, prev, key string) string {
	if len(list) == 0 {
		return ""
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	start := int(h.Sum32() % uint32(len(list)))
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	best, bestLoad := "", 0
	for j := range list {
		name := list[(start+j)%len(list)]
		if tried[name] {
			continue
		}
		s := o.get(name)
		if now.Before(s.until) {
			continue
		}
		load := s.pulls
		if name == prev {
			load += 1 << 20
		}
		if best == "" || load < bestLoad {
			best, bestLoad = name, load
		}
	}
	return best
}

// healthy reports whether name is out of backoff.
func (o *origins) healthy(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.now().Before(o.get(name).until)
}

// soonest returns the origin of list whose backoff ends first ("" for an
// empty list): when every origin is in backoff and none was tried yet, a
// stream tries that one, so that a blip does not refuse every play for
// the backoff.
func (o *origins) soonest(list []string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	best, until := "", time.Time{}
	for _, name := range list {
		if s := o.get(name); best == "" || s.until.Before(until) {
			best, until = name, s.until
		}
	}
	return best
}

// known lists every origin the box has a state for, sorted (static ones
// and the group members it reached).
func (o *origins) known() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.state))
	for name := range o.state {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// OriginStats is one origin's state, for the API.
type OriginStats struct {
	Origin    string    `json:"origin"`
	Healthy   bool      `json:"healthy"`
	Until     time.Time `json:"backoff_until,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Pulls     int       `json:"pulls"`
}

func (o *origins) stats(list []string) []OriginStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	out := make([]OriginStats, 0, len(list))
	for _, name := range list {
		s := o.get(name)
		st := OriginStats{Origin: shown(name), Healthy: !now.Before(s.until), LastError: s.lastErr, Pulls: s.pulls}
		if !st.Healthy {
			st.Until = s.until
		}
		out = append(out, st)
	}
	return out
}
