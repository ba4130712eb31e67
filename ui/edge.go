package ui

import (
	"time"

	"github.com/podiumlive/podium/ingest/stream"
)

// UpstreamStats is a pulled stream's link to its origin (an edge's pull),
// as the API and dashboard show it.
type UpstreamStats struct {
	Origin    string
	State     string
	Since     time.Time
	Switches  uint64
	LastError string
}

// EdgeCounters are the box's pull totals.
type EdgeCounters struct {
	Pulls          uint64
	Failovers      uint64
	UpstreamErrors uint64
}

// UpstreamView is a stream's upstream in /api/v1/streams.
type UpstreamView struct {
	Origin    string    `json:"origin"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Switches  uint64    `json:"switches"`
	LastError string    `json:"last_error"`
}

func upstreamView(s UpstreamStats) *UpstreamView {
	return &UpstreamView{Origin: scrub(s.Origin), State: s.State, Since: s.Since.UTC(), Switches: s.Switches,
		LastError: scrub(s.LastError)}
}

// readUpstreams is the world's view of the edge's pulls.
func (u *UI) readUpstreams() map[stream.Key]UpstreamStats {
	if u.deps.Upstreams == nil {
		return nil
	}
	return u.deps.Upstreams()
}

// edgeMetrics writes the pull counters and each pulled stream's state.
func (u *UI) edgeMetrics(p *promWriter, views []StreamView) {
	if u.deps.EdgeCounters == nil {
		return
	}
	c := u.deps.EdgeCounters()
	p.one("podium_edge_pulls_total", "counter", "Streams an edge pulled from its origins on demand.", float64(c.Pulls))
	p.one("podium_edge_failovers_total", "counter", "Switches of a pulled stream to another origin.", float64(c.Failovers))
	p.one("podium_edge_upstream_errors_total", "counter", "Origin sessions of a pull that failed or broke.", float64(c.UpstreamErrors))
	p.family("podium_stream_upstream_switches_total", "counter", "Origin switches of a pulled stream.")
	for i := range views {
		if up := views[i].Upstream; up != nil {
			p.sample("podium_stream_upstream_switches_total", float64(up.Switches), "vhost", views[i].Vhost,
				"app", views[i].App, "stream", views[i].Name, "origin", up.Origin, "state", up.State)
		}
	}
}
