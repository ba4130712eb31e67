package ui

import (
	"bytes"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// promWriter writes the Prometheus text exposition format (version 0.0.4):
// each family's HELP and TYPE once, then its samples.
type promWriter struct {
	b bytes.Buffer
}

func (p *promWriter) family(name, typ, help string) {
	p.b.WriteString("# HELP ")
	p.b.WriteString(name)
	p.b.WriteByte(' ')
	p.b.WriteString(strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help))
	p.b.WriteString("\n# TYPE ")
	p.b.WriteString(name)
	p.b.WriteByte(' ')
	p.b.WriteString(typ)
	p.b.WriteByte('\n')
}

// sample writes name{labels} value; labels are name/value pairs.
// one writes a family of one unlabelled sample.
func (p *promWriter) one(name, typ, help string, v float64) {
	p.family(name, typ, help)
	p.sample(name, v)
}

func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.b.WriteString(labels[i])
			p.b.WriteString(`="`)
			p.b.WriteString(escapeLabel(labels[i+1]))
			p.b.WriteByte('"')
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(formatFloat(v))
	p.b.WriteByte('\n')
}

func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// forwardStates are every state a forward handler can be in; each gets a
// sample (0 or 1) so that a state change is a value change, not a new
// series.
var forwardStates = []string{"connecting", "forwarding", "backoff", "stopped"}

// transcodeStates likewise for transcode jobs.
var transcodeStates = []string{"starting", "running", "restarting", "failed", "stopped"}

// metrics writes /metrics.
func (u *UI) metrics(c *gin.Context) {
	w := u.read()
	views := w.streamViews()
	sum := u.summary(w, views)
	var p promWriter

	p.family("podium_build_info", "gauge", "Podium's version (always 1).")
	p.sample("podium_build_info", 1, "version", u.opts.Version)
	p.family("podium_uptime_seconds", "gauge", "Seconds since Podium started.")
	p.sample("podium_uptime_seconds", sum.Self.Uptime)

	// Totals over every stream, ended ones included.
	p.family("podium_streams", "gauge", "Live streams, by vhost.")
	byVhost := map[string]int{}
	for i := range views {
		byVhost[views[i].Vhost]++
	}
	for _, vh := range sortedKeys(byVhost) {
		p.sample("podium_streams", float64(byVhost[vh]), "vhost", vh)
	}
	p.family("podium_publishers", "gauge", "Live streams with an outside publisher (not a transcode output).")
	p.sample("podium_publishers", float64(sum.Podium.Publishers))
	p.family("podium_viewers", "gauge", "Players reading a live stream.")
	p.sample("podium_viewers", float64(sum.Podium.Viewers))
	p.family("podium_bytes_in_total", "counter", "Bytes received from publishers, every stream so far.")
	p.sample("podium_bytes_in_total", float64(sum.Podium.RecvBytes))
	p.family("podium_bytes_out_total", "counter", "Bytes sent to readers (players, transcode, forward, HLS), every stream so far.")
	p.sample("podium_bytes_out_total", float64(sum.Podium.SendBytes))
	p.family("podium_dropped_packets_total", "counter", "Packets readers were too slow for, every stream so far.")
	p.sample("podium_dropped_packets_total", float64(sum.Podium.Dropped))

	// Per stream.
	perStream := []struct {
		name, typ, help string
		v               func(*StreamView) float64
	}{
		{"podium_stream_bytes_in_total", "counter", "Bytes received from the stream's publisher.", func(v *StreamView) float64 { return float64(v.RecvBytes) }},
		{"podium_stream_bytes_out_total", "counter", "Bytes sent to the stream's readers.", func(v *StreamView) float64 { return float64(v.SendBytes) }},
		{"podium_stream_bitrate_bps", "gauge", "The publisher's bitrate over the last second.", func(v *StreamView) float64 { return v.Bitrate }},
		{"podium_stream_fps", "gauge", "The publisher's video frames per second.", func(v *StreamView) float64 { return v.FPS }},
		{"podium_stream_readers", "gauge", "Readers of the stream (players and Podium's own consumers).", func(v *StreamView) float64 { return float64(v.Clients) }},
		{"podium_stream_viewers", "gauge", "Players of the stream.", func(v *StreamView) float64 { return float64(v.Viewers) }},
		{"podium_stream_dropped_packets_total", "counter", "Packets the stream's readers were too slow for.", func(v *StreamView) float64 { return float64(v.Dropped) }},
		{"podium_stream_uptime_seconds", "gauge", "Seconds since the stream started.", func(v *StreamView) float64 { return v.Uptime }},
	}
	for _, m := range perStream {
		p.family(m.name, m.typ, m.help)
		for i := range views {
			v := &views[i]
			p.sample(m.name, m.v(v), "vhost", v.Vhost, "app", v.App, "stream", v.Name)
		}
	}

	// Forwards.
	fwdCount := map[string]int{}
	var fwds []FwdView
	for i := range views {
		fwds = append(fwds, views[i].Fwd...)
	}
	p.family("podium_forwards", "gauge", "Forward handlers, by state.")
	for _, f := range fwds {
		fwdCount[f.State]++
	}
	for _, s := range forwardStates {
		p.sample("podium_forwards", float64(fwdCount[s]), "state", s)
	}
	p.family("podium_forward_state", "gauge", "1 for the state each forward handler is in, 0 for the others.")
	for _, f := range fwds {
		for _, s := range forwardStates {
			p.sample("podium_forward_state", b2f(f.State == s), "stream", f.Stream, "destination", f.Destination, "state", s)
		}
	}
	perFwd := []struct {
		name, typ, help string
		v               func(*FwdView) float64
	}{
		{"podium_forward_reconnects_total", "counter", "Reconnects of a forward handler.", func(f *FwdView) float64 { return float64(f.Reconnects) }},
		{"podium_forward_moves_total", "counter", "Moves of a group:NAME destination's stream to another member.", func(f *FwdView) float64 { return float64(f.Moves) }},
		{"podium_forward_bytes_total", "counter", "Bytes a forward handler pushed.", func(f *FwdView) float64 { return float64(f.Bytes) }},
		{"podium_forward_bitrate_bps", "gauge", "A forward handler's bitrate over the last second.", func(f *FwdView) float64 { return float64(f.Bitrate) }},
		{"podium_forward_dropped_packets_total", "counter", "Packets a slave was too slow for.", func(f *FwdView) float64 { return float64(f.Dropped) }},
	}
	for _, m := range perFwd {
		p.family(m.name, m.typ, m.help)
		for i := range fwds {
			p.sample(m.name, m.v(&fwds[i]), "stream", fwds[i].Stream, "destination", fwds[i].Destination)
		}
	}

	// Transcodes.
	var trans []*TransView
	transIn := []string{}
	for i := range views {
		if views[i].Trans != nil {
			trans = append(trans, views[i].Trans)
			transIn = append(transIn, views[i].Path)
		}
	}
	transCount := map[string]int{}
	for _, t := range trans {
		transCount[t.State]++
	}
	p.family("podium_transcodes", "gauge", "Transcode jobs, by state.")
	for _, s := range transcodeStates {
		p.sample("podium_transcodes", float64(transCount[s]), "state", s)
	}
	perTrans := []struct {
		name, typ, help string
		v               func(*TransView) float64
	}{
		{"podium_transcode_speed", "gauge", "Media seconds a transcode produces per second (1 = real time).", func(t *TransView) float64 { return t.Speed }},
		{"podium_transcode_errors_total", "counter", "Corrupt packets a transcode skipped.", func(t *TransView) float64 { return float64(t.Errors) }},
		{"podium_transcode_restarts_total", "counter", "Restarts of a transcode pipeline.", func(t *TransView) float64 { return float64(t.Restarts) }},
		{"podium_transcode_frames_encoded_total", "counter", "Frames a transcode encoded.", func(t *TransView) float64 { return float64(t.FramesEncoded) }},
		{"podium_transcode_hardware", "gauge", "1 when a transcode's video encoder runs on a GPU or Quick Sync.", func(t *TransView) float64 { return b2f(t.Hardware) }},
	}
	for _, m := range perTrans {
		p.family(m.name, m.typ, m.help)
		for i, t := range trans {
			p.sample(m.name, m.v(t), "stream", transIn[i], "output", t.Output, "encoder", t.Encoder)
		}
	}

	// HLS (only when the HLS muxer reports).
	if u.deps.HLS != nil {
		var hlsSegs, hlsDrops float64
		p.family("podium_stream_hls_segments_total", "counter", "HLS segments written, by stream.")
		for i := range views {
			if h := views[i].HLS; h != nil {
				p.sample("podium_stream_hls_segments_total", float64(h.Segments), "vhost", views[i].Vhost, "app", views[i].App, "stream", views[i].Name)
				hlsSegs += float64(h.Segments)
				hlsDrops += float64(h.Dropped)
			}
		}
		p.family("podium_hls_segments_total", "counter", "HLS segments written by live streams.")
		p.sample("podium_hls_segments_total", hlsSegs)
		p.family("podium_hls_dropped_packets_total", "counter", "Packets the HLS muxer was too slow for, live streams.")
		p.sample("podium_hls_dropped_packets_total", hlsDrops)
	}

	// Sources.
	if u.deps.Sources != nil {
		srcs := u.deps.Sources()
		p.family("podium_source_reconnects_total", "counter", "Reconnects of an RTSP source.")
		for _, s := range srcs {
			p.sample("podium_source_reconnects_total", float64(s.Reconnects), "url", scrub(s.URL), "stream", s.Stream.String())
		}
		p.family("podium_source_bytes_total", "counter", "Bytes an RTSP source received.")
		for _, s := range srcs {
			p.sample("podium_source_bytes_total", float64(s.Bytes), "url", scrub(s.URL), "stream", s.Stream.String())
		}
		p.family("podium_source_up", "gauge", "1 when an RTSP source is receiving.")
		for _, s := range srcs {
			up := s.State == "running" || s.State == "receiving" || s.State == "publishing" || s.State == "forwarding"
			p.sample("podium_source_up", b2f(up), "url", scrub(s.URL), "stream", s.Stream.String(), "state", s.State)
		}
	}

	u.edgeMetrics(&p, views)

	// Hardware.
	if hw, _ := u.hwViews(); len(hw) > 0 {
		p.family("podium_hw_encoder_usable", "gauge", "1 when the encoder opened and encoded at start (podium hw).")
		for _, h := range hw {
			p.sample("podium_hw_encoder_usable", b2f(h.Usable), "backend", h.Backend, "encoder", h.Encoder)
		}
	}

	// Host and process.
	h := sum.System
	p.family("podium_host_cpu_percent", "gauge", "The box's CPU busy share over the last second (0-100).")
	p.sample("podium_host_cpu_percent", h.CPUPercent)
	p.family("podium_host_cpus", "gauge", "Logical CPUs.")
	p.sample("podium_host_cpus", float64(h.CPUs))
	p.family("podium_host_load1", "gauge", "One-minute load average.")
	p.sample("podium_host_load1", h.Load1)
	p.family("podium_host_memory_total_bytes", "gauge", "The box's memory.")
	p.sample("podium_host_memory_total_bytes", float64(h.MemTotalKB)*1024)
	p.family("podium_host_memory_used_bytes", "gauge", "The box's memory in use (total - available).")
	p.sample("podium_host_memory_used_bytes", float64(h.MemUsedKB)*1024)
	p.family("podium_host_network_receive_bytes_total", "counter", "Bytes received, by interface.")
	for _, n := range h.Interfaces {
		p.sample("podium_host_network_receive_bytes_total", float64(n.RecvBytes), "interface", n.Name)
	}
	p.family("podium_host_network_transmit_bytes_total", "counter", "Bytes sent, by interface.")
	for _, n := range h.Interfaces {
		p.sample("podium_host_network_transmit_bytes_total", float64(n.SendBytes), "interface", n.Name)
	}
	p.family("podium_process_cpu_seconds_total", "counter", "CPU time Podium used.")
	p.sample("podium_process_cpu_seconds_total", h.ProcCPUSeconds)
	p.family("podium_process_resident_memory_bytes", "gauge", "Podium's resident memory.")
	p.sample("podium_process_resident_memory_bytes", float64(h.ProcRSSKB)*1024)
	p.family("podium_goroutines", "gauge", "Podium's goroutines.")
	p.sample("podium_goroutines", float64(sum.Self.Goroutines))

	if u.deps.CHeap != nil {
		h := u.deps.CHeap()
		p.family("podium_c_heap_bytes", "gauge", "glibc's malloc heap, where libav's memory lives: in_use, free (inside the arenas, resident unless trimmed), arena (taken by the arenas), mmap (mapped by large allocations).")
		p.sample("podium_c_heap_bytes", float64(h.InUse), "state", "in_use")
		p.sample("podium_c_heap_bytes", float64(h.Free), "state", "free")
		p.sample("podium_c_heap_bytes", float64(h.Arena), "state", "arena")
		p.sample("podium_c_heap_bytes", float64(h.Mmap), "state", "mmap")
		p.family("podium_c_heap_free_chunks", "gauge", "Free chunks in glibc's malloc arenas (fragments).")
		p.sample("podium_c_heap_free_chunks", float64(h.Chunks))
	}

	u.recordingMetrics(&p)

	// Auth.
	p.family("podium_login_failures_total", "counter", "Failed dashboard/API logins.")
	p.sample("podium_login_failures_total", float64(u.auth.failed.Load()))
	p.family("podium_login_rate_limited_total", "counter", "Logins refused by the per-address rate limit.")
	p.sample("podium_login_rate_limited_total", float64(u.auth.limited.Load()))
	p.family("podium_dashboard_watchers", "gauge", "Open dashboards (live-update connections).")
	p.sample("podium_dashboard_watchers", float64(u.events.watchers()))

	// The Go runtime and the process, by the client's standard collectors.
	if err := u.runtime.write(&p.b); err != nil {
		u.log.Warn("metrics", "err", err)
	}

	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", p.b.Bytes())
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
