package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// TestUpstreamInStreamsAndMetrics: a stream an edge pulls shows its
// upstream in /api/v1/streams, and /metrics counts pulls, failovers and
// upstream errors.
func TestUpstreamInStreamsAndMetrics(t *testing.T) {
	pulled := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "class"}
	since := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f := newFixture(t, func(d *Deps, _ *Options) {
		d.Upstreams = func() map[stream.Key]UpstreamStats {
			return map[stream.Key]UpstreamStats{pulled: {Origin: "10.0.0.2:1935", State: "playing", Since: since,
				Switches: 1, LastError: "pull 10.0.0.1:1935: origin closed the connection"}}
		}
		d.EdgeCounters = func() EdgeCounters { return EdgeCounters{Pulls: 3, Failovers: 1, UpstreamErrors: 2} }
	})
	f.publish(pulled, stream.ClientInfo{Protocol: "edge", Remote: "10.0.0.2:1935"}, aacTrack)
	f.publish(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "local"}, stream.ClientInfo{Protocol: "rtmp", Remote: "10.9.0.1:5000"}, aacTrack)

	type upstream struct {
		Origin    string    `json:"origin"`
		State     string    `json:"state"`
		Since     time.Time `json:"since"`
		Switches  uint64    `json:"switches"`
		LastError string    `json:"last_error"`
	}
	res := decode[struct {
		Streams []struct {
			Name     string    `json:"name"`
			Upstream *upstream `json:"upstream"`
		} `json:"streams"`
	}](t, f.get("/api/v1/streams"))
	require.Len(t, res.Streams, 2)
	for _, s := range res.Streams {
		if s.Name == "local" {
			require.Nil(t, s.Upstream, "a published stream has no upstream")
			continue
		}
		require.NotNil(t, s.Upstream)
		require.Equal(t, upstream{Origin: "10.0.0.2:1935", State: "playing", Since: since, Switches: 1,
			LastError: "pull 10.0.0.1:1935: origin closed the connection"}, *s.Upstream)
	}
	m := string(f.get("/metrics"))
	for _, line := range []string{
		"podium_edge_pulls_total 3", "podium_edge_failovers_total 1", "podium_edge_upstream_errors_total 2",
		`podium_stream_upstream_switches_total{vhost="__defaultVhost__",app="live",stream="class",origin="10.0.0.2:1935",state="playing"} 1`,
	} {
		require.True(t, strings.Contains(m, line+"\n"), "missing %q in\n%s", line, m)
	}
}
