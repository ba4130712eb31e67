package main

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/dvr"
	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/hls"
	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/ingest/edge"
	ingestrtsp "github.com/podiumlive/podium/ingest/rtsp"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/transcode"
	"github.com/podiumlive/podium/transcode/av"
	"github.com/podiumlive/podium/ui"
)

// uiParts are the components the dashboard reads; nil ones are not
// running.
type uiParts struct {
	hub     *stream.Hub
	engine  *transcode.Engine
	fwd     *forward.Manager
	hls     *hls.Manager
	sources *ingestrtsp.Sources
	edge    *edge.Edge
	hw      []hwaccel.Status
	dvr     *dvr.Manager
	cluster ui.Cluster
}

// newUI builds the dashboard, API and /metrics over p. notice receives
// the generated admin password, once.
func newUI(cfg *configs.Config, p uiParts, notice io.Writer, log *slog.Logger) (*ui.UI, error) {
	deps := ui.Deps{
		Hub:     p.hub,
		HW:      func() []hwaccel.Status { return slices.Clone(p.hw) },
		HLSURL:  hlsURL(cfg),
		Cluster: p.cluster,
		CHeap:   av.CHeap,
	}
	if p.engine != nil {
		deps.Transcodes = p.engine.Stats
	}
	if p.fwd != nil {
		deps.Forwards = p.fwd.Stats
	}
	if p.hls != nil {
		deps.HLS = func() []ui.HLSStats {
			st := p.hls.Stats()
			out := make([]ui.HLSStats, 0, len(st.Streams))
			for _, s := range st.Streams {
				if !s.Live {
					continue // ended, files not disposed of yet
				}
				k := stream.Key{Vhost: s.Vhost, App: s.App, Name: s.Stream}
				out = append(out, ui.HLSStats{
					Stream: k, URL: deps.HLSURL(k), Segments: s.SegmentsWritten,
					Bytes: uint64(max(0, s.BytesOnDisk)), LastError: s.LastError,
				})
			}
			return out
		}
	}
	if p.sources != nil {
		deps.Sources = func() []ui.SourceStats {
			st := p.sources.Stats()
			out := make([]ui.SourceStats, 0, len(st))
			for _, s := range st {
				out = append(out, ui.SourceStats{
					URL: s.URL, Stream: stream.Key{Vhost: s.Vhost, App: s.App, Name: s.Name},
					State: s.State, LastError: s.LastError, Reconnects: s.Reconnects, Bytes: s.Bytes, Since: s.Since,
				})
			}
			return out
		}
	}
	if p.dvr != nil && p.dvr.Enabled() {
		deps.Recordings = dvrStore{p.dvr}
	}
	if p.edge != nil && p.edge.Enabled() {
		deps.Upstreams = func() map[stream.Key]ui.UpstreamStats {
			ps := p.edge.Pulls()
			out := make(map[stream.Key]ui.UpstreamStats, len(ps))
			for k, u := range ps {
				out[k] = ui.UpstreamStats{Origin: u.Origin, State: u.State, Since: u.Since, Switches: u.Switches, LastError: u.LastError}
			}
			return out
		}
		deps.EdgeCounters = func() ui.EdgeCounters {
			c := p.edge.Counters()
			return ui.EdgeCounters{Pulls: c.Pulls, Failovers: c.Failovers, UpstreamErrors: c.UpstreamErrors}
		}
	}
	return ui.New(deps, ui.Options{
		Version:       version,
		AdminPassword: cfg.Auth.AdminPassword,
		DataDir:       cfg.DataDir,
		Notice:        notice,
	}, log)
}

// hlsURL returns the playlist path of a stream whose vhost has HLS on:
// /APP/STREAM.m3u8, with ?vhost= when several vhosts have HLS.
func hlsURL(cfg *configs.Config) func(stream.Key) string {
	var on []string
	for _, v := range cfg.Vhosts {
		if v.HLS != nil && v.HLS.Enabled {
			on = append(on, v.Name)
		}
	}
	return func(k stream.Key) string {
		if !slices.Contains(on, k.Vhost) {
			return ""
		}
		u := "/" + k.App + "/" + k.Name + ".m3u8"
		if len(on) > 1 {
			u += "?vhost=" + k.Vhost
		}
		return u
	}
}

// probeRest completes the hardware panel: the backends the start-up probe
// skipped (not in hwaccel.prefer) are probed once too, as `podium hw`
// does.
func probeRest(ctx context.Context, device string, probed []hwaccel.Status) []hwaccel.Status {
	var out []hwaccel.Status
	for _, b := range hwaccel.Backends() {
		i := slices.IndexFunc(probed, func(s hwaccel.Status) bool { return s.Backend == b.Name() })
		if i >= 0 {
			out = append(out, probed[i])
			continue
		}
		out = append(out, b.Probe(ctx, device))
	}
	return out
}
