// Package groups is what the media stages (forward, the edge's pull) know
// of the registry's groups of origins: who is in a group, how loaded each
// member is, and which member has a stream. cluster.Cluster implements
// Directory from its last registry read, so an answer never waits on Redis
// and never touches the media path; with Redis unreachable the answers are
// the last known ones.
//
// The package holds types only: forward and ingest/edge import it, the
// cluster stage implements it, cmd/podium wires the two.
package groups

import "errors"

// ErrNoMember: the group has no live member that can take the stream.
var ErrNoMember = errors.New("no live member in the group")

// Member is one live box of a group as the registry last saw it.
type Member struct {
	// Node is the member's node id.
	Node string
	// RTMP is the host:port other boxes publish to and pull from.
	RTMP string
	// Load orders members: lower takes the next stream. It counts what a
	// master spends (streams transcoded and CPU); see cluster.
	Load float64
	// Streams is how many streams the member has.
	Streams int
}

// Directory answers from the registry's last read.
type Directory interface {
	// Members lists the group's live members, least loaded first.
	Members(group string) []Member
	// Owner returns the member of group holding the claim on stream key
	// (vhost/app/stream, the hub's key as text); false when none does.
	Owner(group, key string) (Member, bool)
	// Owns reports whether this box holds the claim on key: a stream it
	// has but another member claimed first is not forwarded by it. True
	// when the box is in no group (nothing to share).
	Owns(key string) bool
	// OnChange registers fn, called after a registry read that changed a
	// group's members or an owner (not under the directory's locks).
	OnChange(fn func())
	// Self is this box's node id.
	Self() string
}
