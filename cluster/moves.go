package cluster

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Why a class moved to another member.
const (
	// MoveReleased: the old owner unpublished it (its heartbeat no longer
	// lists the stream) and released its claim.
	MoveReleased = "released"
	// MoveExpired: the old owner stopped heartbeating (dead, or cut off
	// from the registry) and its claim lapsed.
	MoveExpired = "expired"
	// MoveTaken: the old owner is alive and still has the stream, yet
	// another member holds the claim (the old one's lapsed, or the
	// registry restarted empty and the other claimed first).
	MoveTaken = "taken"
)

// Move is one class changing owner, as the API shows it.
type Move struct {
	Group  string    `json:"group"`
	Stream string    `json:"stream"` // vhost/app/stream
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Bounds of the move log.
const (
	maxMoves = 100
	// maxGone bounds the classes remembered between an owner's claim
	// going and another's showing; goneFor is how long one is.
	maxGone = 4096
	goneFor = 2 * time.Minute
)

// moveLog keeps the recent moves, and the owner of each class whose
// claim went, so the move shows when another member claims it.
type moveLog struct {
	mu    sync.Mutex
	moves []Move
	gone  map[string]Move // group + "\x00" + key → From, Reason, At
}

func newMoveLog() *moveLog { return &moveLog{gone: map[string]Move{}} }

func (l *moveLog) list() []Move {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.moves)
	if out == nil {
		out = []Move{}
	}
	return out
}

// observe compares two reads and logs each class that changed owner,
// once. reason says why from's claim went, judged on the new read.
func (l *moveLog) observe(prev, next *groupsView, reason func(from, key string) string, now time.Time, log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, m := range l.gone {
		if now.Sub(m.At) > goneFor {
			delete(l.gone, k)
		}
	}
	for _, group := range slices.Sorted(maps.Keys(next.owners)) {
		owners := next.owners[group]
		if prev == nil || !prev.read[group] {
			continue // a first read: nothing moved that we saw
		}
		old := prev.owners[group]
		for key, from := range old {
			if _, held := owners[key]; !held && len(l.gone) < maxGone {
				l.gone[group+"\x00"+key] = Move{Group: group, Stream: key, From: from, Reason: reason(from, key), At: now}
			}
		}
		for _, key := range slices.Sorted(maps.Keys(owners)) {
			to, from := owners[key], old[key]
			if from == to {
				continue
			}
			m := Move{Group: group, Stream: key, From: from, To: to, At: now}
			if from != "" {
				m.Reason = reason(from, key)
			} else if g, ok := l.gone[group+"\x00"+key]; ok && g.From != to {
				m.From, m.Reason = g.From, g.Reason
			}
			delete(l.gone, group+"\x00"+key)
			if m.From == "" {
				continue // a new class, or its owner back
			}
			log.Info("class moved", "group", group, "stream", key, "from", m.From, "to", m.To, "reason", m.Reason)
			l.moves = append(l.moves, m)
			if len(l.moves) > maxMoves {
				l.moves = slices.Delete(l.moves, 0, len(l.moves)-maxMoves)
			}
		}
	}
}
