// Package cluster is Podium's cluster stage: every box writes its state to
// a shared registry each heartbeat (Redis, or memory for a box alone), and
// any box answers the play-URL allocator from what the registry holds.
//
// The registry is never on the media path: with Redis down, streams keep
// flowing, the heartbeat retries with backoff and the allocator answers
// from its last view, marked stale. go-redis is imported here and nowhere
// else.
package cluster

import (
	"context"
	"errors"
	"time"
)

// Errors of the registry and the allocator.
var (
	// ErrNodeTaken: another box (another instance) holds this node id.
	ErrNodeTaken = errors.New("node id is held by another box")
	// ErrNoSession: the play session is unknown or expired.
	ErrNoSession = errors.New("play session unknown or expired")
	// ErrUnknownStream: no node has the stream.
	ErrUnknownStream = errors.New("stream not found on any node")
	// ErrNoNode: nodes have the stream but none can take a viewer.
	ErrNoNode = errors.New("no node can take a viewer now")
	// ErrBadToken: play_secret is set and the token is missing, wrong or
	// expired.
	ErrBadToken = errors.New("play token missing, invalid or expired")
)

// Entry is one node as the registry holds it: the node's own JSON (decoded
// by the caller, which skips garbage), the allocations counted against it
// since its last heartbeat, and how long until it expires.
type Entry struct {
	ID       string
	Value    []byte
	Reserved int64
	TTLLeft  time.Duration
}

// Registry is the shared state. The memory and Redis implementations have
// the same semantics (one conformance test drives both).
type Registry interface {
	// Announce writes node id's value, expiring after ttl, on behalf of
	// instance (one process). If another instance holds id and its entry
	// has not expired, it writes nothing and returns ErrNodeTaken.
	// joined is how many viewers appeared on the node since its last
	// heartbeat: each replaces one allocation counted against it (the
	// count never goes below 0).
	Announce(ctx context.Context, id, instance string, value []byte, ttl time.Duration, joined int64) error
	// Leave removes id if instance holds it (a clean shutdown).
	Leave(ctx context.Context, id, instance string) error
	// Nodes lists the nodes that have not expired, in id order.
	Nodes(ctx context.Context) ([]Entry, error)
	// Assign counts one allocation against node (the count expires with
	// resTTL unless renewed) and stores session sid, in one round trip.
	Assign(ctx context.Context, node string, resTTL time.Duration, sid string, session []byte, sessTTL time.Duration) error
	// Session returns session sid's value, ErrNoSession when there is
	// none.
	Session(ctx context.Context, sid string) ([]byte, error)
	// Claim claims each of keys (stream keys, vhost/app/stream) in group
	// for node, expiring after ttl: a free key is taken (SET NX), a key
	// node holds already is refreshed, a key another node holds is left
	// alone. It returns each key's holder after the call, in one round
	// trip.
	Claim(ctx context.Context, group, node string, keys []string, ttl time.Duration) (map[string]string, error)
	// Release deletes node's claims on keys in group (compare-and-delete:
	// another node's claim stays).
	Release(ctx context.Context, group, node string, keys []string) error
	// Owners reads every live claim of each group (stream key → node), at
	// most maxClaims per group and maxReadGroups groups, in one round
	// trip. Every group asked for is in the answer.
	Owners(ctx context.Context, groups []string) (map[string]map[string]string, error)
	// Close releases connections.
	Close() error
}
