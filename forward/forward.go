// Package forward pushes the streams of a vhost that has `forward` to slave
// servers over RTMP, SRS style: a static list of destinations and/or the
// URLs an on_forward backend hook returns.
//
// Each (stream, destination) pair is one handler with its own goroutine
// and its own bounded hub queue: a slow or dead slave never delays the
// publisher, the transcoder or the other slaves. A handler runs
// connect → forward → record state and last error → back off → retry,
// and every (re)connect starts with metadata, sequence headers and the GOP
// cache, so the slave's first frame is decodable.
//
// In a cluster (Options.Groups), a destination `group:NAME` sends each
// stream to one live member of the group: the least loaded, counting this
// box's own recent assignments (picker), and sticky while it works. When
// the member fails (reset, refused, timed out, refused the publish) or
// leaves the group, the stream moves to another member at once, without a
// backoff wait (the failed member sits out for every stream of the box);
// moves are rate-limited per stream and never go back by themselves. The
// publisher is untouched, and the new member gets sequence headers and the
// GOP cache like any reconnect. A box in a group forwards only the streams
// whose claim it holds: the claim's loser holds its forwards until it
// owns the stream (Directory.OnChange).
package forward

import (
	"time"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/internal/backoff"
	"github.com/podiumlive/podium/internal/groups"
)

// HopsParam is the query parameter that marks a forwarded push with the
// number of forward hops the stream has made. RTMP ingest
// (ingest/rtmp/conn.go) reads it into stream.ClientInfo.Forwarded and strips
// it; the two names must match.
const HopsParam = "podium_hops"

// Settings is one vhost's forward configuration.
type Settings struct {
	Destinations []string
	Backend      string
	HopLimit     int
	// NoDelay sets TCP_NODELAY on the pushes (the vhost's tcp_nodelay); a
	// reload that changes it applies to destinations started afterwards.
	NoDelay bool
}

// SettingsFrom resolves a config's forward sections, by vhost name.
func SettingsFrom(cfg *configs.Config) map[string]Settings {
	out := make(map[string]Settings)
	for _, v := range cfg.Vhosts {
		if v.Forward == nil || (len(v.Forward.Destinations) == 0 && v.Forward.Backend == "") {
			continue
		}
		out[v.Name] = Settings{
			Destinations: append([]string(nil), v.Forward.Destinations...),
			Backend:      v.Forward.Backend,
			HopLimit:     max(1, v.Forward.HopLimit),
			NoDelay:      v.TCPNoDelay,
		}
	}
	return out
}

// Options tune timeouts and backoff; zero values take the defaults.
type Options struct {
	// ConnectTimeout bounds TCP connect, handshake, connect and publish.
	ConnectTimeout time.Duration
	// WriteTimeout bounds each write to a slave.
	WriteTimeout time.Duration
	// SendBuffer bounds the kernel's send queue per slave (SO_SNDBUF), so
	// a slow slave's backlog stays in the handler's queue, where it is
	// dropped by whole GOPs, rather than aging in the kernel.
	SendBuffer int
	// UnsentLimit bounds what the kernel holds unsent per slave
	// (TCP_NOTSENT_LOWAT), so after a slow spell (a bandwidth cap) the
	// slave gets fresh media instead of first the send buffer's stale
	// seconds.
	UnsentLimit int
	// CloseGrace is how long a stopping handler may spend flushing.
	CloseGrace time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay; it resets after
	// GoodRun of uninterrupted forwarding.
	BackoffMin, BackoffMax, GoodRun time.Duration
	// HookTimeout bounds one backend call.
	HookTimeout time.Duration
	// ServerID is sent to the backend as server_id.
	ServerID string
	// Groups is the registry's view of the cluster's groups: the members
	// a `group:NAME` destination picks from, and the claims that decide
	// whether this box forwards a stream at all (a stream another member
	// owns is not forwarded here). nil: no cluster; group destinations
	// then forward nowhere and every stream is this box's.
	Groups groups.Directory
	// MemberBackoff is how long a member a push failed on is left out of
	// this box's picks, for every stream (default 10 s).
	MemberBackoff time.Duration
	// MoveBurst moves of one stream go at once; then one per MoveEvery
	// (defaults 3 and 10 s): a flapping group does not bounce a stream.
	MoveBurst int
	MoveEvery time.Duration
}

// backoff is the reconnect (and hook retry) schedule: ±25% jitter.
func (o Options) backoff() backoff.Backoff {
	return backoff.Backoff{Min: o.BackoffMin, Max: o.BackoffMax, Jitter: 0.25}
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, 5*time.Second)
	def(&o.WriteTimeout, 5*time.Second)
	def(&o.CloseGrace, 2*time.Second)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.GoodRun, time.Minute)
	def(&o.HookTimeout, 5*time.Second)
	def(&o.MemberBackoff, 10*time.Second)
	def(&o.MoveEvery, 10*time.Second)
	if o.MoveBurst <= 0 {
		o.MoveBurst = 3
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = 128 << 10 // the kernel doubles it: ~1 s of 2 Mbit/s
	}
	if o.UnsentLimit <= 0 {
		o.UnsentLimit = 16 << 10 // a few frames; a keyframe goes out in a few wake-ups
	}
	if o.ServerID == "" {
		o.ServerID = "podium"
	}
	return o
}

// State is where a handler is in its life.
type State string

// Handler states.
const (
	StateConnecting State = "connecting"
	StateForwarding State = "forwarding"
	StateBackoff    State = "backoff"
	StateStopped    State = "stopped"
)

// Stats is a snapshot of one (stream, destination) handler.
type Stats struct {
	Stream      string    `json:"stream"`      // vhost/app/stream
	Destination string    `json:"destination"` // secrets redacted
	State       State     `json:"state"`
	LastError   string    `json:"last_error,omitempty"`
	Reconnects  uint64    `json:"reconnects"`
	Bytes       uint64    `json:"bytes"`
	Bitrate     int64     `json:"bitrate"` // bit/s over the last second
	Dropped     uint64    `json:"dropped"` // packets the slave was too slow for
	Since       time.Time `json:"since"`   // when State began
	// Member is a group destination's current member (its node id).
	Member string `json:"member,omitempty"`
	// Moves counts a group destination's moves from a failed member to
	// another.
	Moves uint64 `json:"moves"`
}
