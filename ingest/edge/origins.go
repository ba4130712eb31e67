package edge

import (
	"hash/fnv"
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
// failed, -1 for none) goes last. When every untried origin is in backoff
// it returns -1, unless none was tried yet: then the one whose backoff
// ends first, so that a blip does not refuse every play for the backoff.
func (o *origins) pick(list []string, tried map[int]bool, prev int, key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	start := int(h.Sum32() % uint32(len(list)))
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	best, bestLoad := -1, 0
	waiting, waitUntil := -1, time.Time{}
	for j := range list {
		i := (start + j) % len(list)
		if tried[i] {
			continue
		}
		s := o.get(list[i])
		if now.Before(s.until) {
			if waiting < 0 || s.until.Before(waitUntil) {
				waiting, waitUntil = i, s.until
			}
			continue
		}
		load := s.pulls
		if i == prev {
			load += 1 << 20
		}
		if best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	if best < 0 && len(tried) == 0 {
		return waiting
	}
	return best
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
