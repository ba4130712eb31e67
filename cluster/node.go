package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// WireVersion is the version of the node JSON this Podium writes. Entries
// of a newer version (a newer Podium in a mixed cluster) are skipped and
// logged once, as garbage is. Fields added since (group, rtmp,
// transcodes, a stream's pulled/transcoded) are optional: an older
// Podium ignores them, and reads the same version.
const WireVersion = 1

// Node kinds.
const (
	KindPodium = "podium"
	KindSRS    = "srs" // a stock SRS box registered by its heartbeat
)

// Node states.
const (
	StateServing  = "serving"
	StateDraining = "draining" // keeps its viewers, gets no new ones
)

// Node is what a box writes to the registry each heartbeat.
type Node struct {
	V          int     `json:"v"`
	ID         string  `json:"id"`
	Kind       string  `json:"kind"`
	Line       string  `json:"line"`
	URL        string  `json:"url"` // public base URL, http://host:port
	Serve      bool    `json:"serve"`
	State      string  `json:"state"`
	Pulls      bool    `json:"pulls,omitempty"` // an edge: pulls a class on demand for an HTTP-FLV player
	MaxViewers int     `json:"max_viewers"`     // 0 = no limit
	Viewers    int     `json:"viewers"`
	EgressBps  int64   `json:"egress_bps"`
	CPU        float64 `json:"cpu"` // host CPU in use, 0-1
	// Group is the group of origins the box is in (cluster.group; "" =
	// none); RTMP the host:port other boxes reach its RTMP at.
	Group string `json:"group,omitempty"`
	RTMP  string `json:"rtmp,omitempty"`
	// Transcodes is how many streams the box runs a transcode for (a
	// load input with CPU, see Load).
	Transcodes int `json:"transcodes,omitempty"`
	// Streams are the box's live streams.
	Streams []Stream `json:"streams"`
	// HeartbeatMs is the interval the entry is written at; it expires
	// after three.
	HeartbeatMs int64 `json:"heartbeat_ms"`
	// At is the writer's clock (unix ms), for display only.
	At int64 `json:"at"`
	// SRS is what a stock SRS box sent (KindSRS only).
	SRS *SRSInfo `json:"srs,omitempty"`
}

// Stream is one live stream on a node.
type Stream struct {
	Vhost string `json:"vhost"`
	App   string `json:"app"`
	Name  string `json:"stream"`
	// HLS is the playlist path when the stream has HLS segments
	// (/live/room101.m3u8[?vhost=]); FLV the HTTP-FLV path.
	HLS string `json:"hls,omitempty"`
	FLV string `json:"flv,omitempty"`
	// LastFrameMs is how long ago the stream's last packet arrived.
	LastFrameMs int64 `json:"last_frame_ms"`
	Viewers     int   `json:"viewers"`
	// Pulled: a copy the box pulls from another box (an edge's pull),
	// never claimed. Transcoded: the output of the box's own transcode.
	Pulled     bool `json:"pulled,omitempty"`
	Transcoded bool `json:"transcoded,omitempty"`
}

// Key is the stream's hub key as text, vhost/app/stream: the key claims
// and the groups.Directory use.
func (s Stream) Key() string { return s.Vhost + "/" + s.App + "/" + s.Name }

// SRSInfo is the part of SRS's heartbeat body that is kept.
type SRSInfo struct {
	DeviceID string   `json:"device_id,omitempty"`
	IP       string   `json:"ip"`
	Server   string   `json:"server,omitempty"`
	Service  string   `json:"service,omitempty"`
	PID      string   `json:"pid,omitempty"`
	RTMP     []string `json:"rtmp,omitempty"`
	HTTP     []string `json:"http,omitempty"`
	API      []string `json:"api,omitempty"`
}

// decoder decodes registry entries, skipping garbage and entries of a
// newer version with one log line per entry (not one per read).
type decoder struct {
	log *slog.Logger

	mu     sync.Mutex
	logged map[string]bool // kind + id, bounded
	// last holds each node's last decoded entry: a node's value changes
	// once per heartbeat, the allocator reads it on every allocation.
	last map[string]decoded
}

type decoded struct {
	raw  string
	node Node
	ok   bool
}

const maxLogged = 1024

func newDecoder(log *slog.Logger) *decoder {
	return &decoder{log: log, logged: map[string]bool{}, last: map[string]decoded{}}
}

// decodeAll decodes a registry read, reusing the entries that did not
// change since the last read. The Streams of a returned Node are shared:
// read only.
func (d *decoder) decodeAll(entries []Entry) []view {
	d.mu.Lock()
	seen := make(map[string]bool, len(entries))
	out := make([]view, 0, len(entries))
	for _, e := range entries {
		seen[e.ID] = true
		c, hit := d.last[e.ID]
		if !hit || c.raw != string(e.Value) {
			d.mu.Unlock()
			n, ok := d.decode(e)
			d.mu.Lock()
			c = decoded{raw: string(e.Value), node: n, ok: ok}
			d.last[e.ID] = c
		}
		if !c.ok {
			continue
		}
		age := time.Duration(0)
		if c.node.HeartbeatMs > 0 {
			age = max(0, 3*time.Duration(c.node.HeartbeatMs)*time.Millisecond-e.TTLLeft)
		}
		out = append(out, view{Node: c.node, Reserved: e.Reserved, Age: age})
	}
	for id := range d.last {
		if !seen[id] {
			delete(d.last, id)
		}
	}
	d.mu.Unlock()
	return out
}

func (d *decoder) decode(e Entry) (Node, bool) {
	var n Node
	err := json.Unmarshal(e.Value, &n)
	switch {
	case err != nil:
		d.once(e.ID, "garbage", fmt.Sprintf("not node JSON: %v", err))
		return Node{}, false
	case n.V > WireVersion:
		d.once(e.ID, "version", fmt.Sprintf("written by a newer Podium (version %d, this one reads %d)", n.V, WireVersion))
		return Node{}, false
	case n.V < 1 || n.ID != e.ID || n.URL == "":
		d.once(e.ID, "garbage", "missing version, id or url")
		return Node{}, false
	}
	return n, true
}

func (d *decoder) once(id, kind, msg string) {
	d.mu.Lock()
	k := kind + "\x00" + id
	seen := d.logged[k]
	if !seen {
		if len(d.logged) >= maxLogged {
			clear(d.logged)
		}
		d.logged[k] = true
	}
	d.mu.Unlock()
	if !seen {
		d.log.Warn("registry entry skipped", "node", id, "reason", msg)
	}
}
