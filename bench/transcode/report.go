package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/latency"
	"github.com/podiumlive/podium/bench/internal/proc"
)

// Targets from the issue.
const (
	targetCPURatio  = 2.0  // peer CPU per stream / Podium's, at least
	targetRSSRatio  = 20.0 // peer RSS per stream / Podium's, at least
	targetLatencyMS = 30.0 // Podium's added latency, median, at most
)

// latencyStats are one system's matched hops, also the JSON shape.
type latencyStats struct {
	Frames   int   `json:"frames_matched"`
	OutVideo int64 `json:"out_video_frames"`
	latency.Quantiles
}

func summarize(ds []time.Duration, outVideo int64) latencyStats {
	return latencyStats{Frames: len(ds), OutVideo: outVideo, Quantiles: latency.Summarize(ds)}
}

// systemResult is one system's row, also the JSON shape.
type systemResult struct {
	System               string       `json:"system"`
	CPUPct               float64      `json:"cpu_pct"`
	CPUPctPerStream      float64      `json:"cpu_pct_per_stream"`
	ServerCPUPct         float64      `json:"server_cpu_pct"`
	TranscoderCPUPct     float64      `json:"transcoders_cpu_pct"`
	RSSMBPeak            float64      `json:"rss_mb_peak"`
	RSSMBMean            float64      `json:"rss_mb_mean"`
	RSSMBPerStream       float64      `json:"rss_mb_per_stream"`
	IdleRSSMB            float64      `json:"idle_server_rss_mb"`
	RSSGrowthMBPerStream float64      `json:"rss_growth_mb_per_stream"`
	Procs                int          `json:"procs"`
	MbitOut              float64      `json:"players_mbit_s"`
	PlayerMBMin          float64      `json:"player_mb_min"`
	Latency              latencyStats `json:"latency"`
	AudioLatency         latencyStats `json:"audio_latency_estimate"`
	ServerAnonRSSMB      float64      `json:"server_anon_rss_mb_peak"`
	PSSMBPerStream       float64      `json:"pss_mb_per_stream_end"`
	MatchedShare         float64      `json:"matched_share"`
	PlayerRestarts       int64        `json:"player_restarts"`
	TranscoderRestarts   int64        `json:"transcoder_restarts"`
	ProbeReconnects      int64        `json:"probe_reconnects"`
}

type result struct {
	Bench          string         `json:"bench"`
	K              int            `json:"k"`
	WindowS        float64        `json:"window_s"`
	FixtureMbit    float64        `json:"fixture_mbit_s"`
	MachineBusyPct float64        `json:"machine_busy_pct"`
	Systems        []systemResult `json:"systems"`
	CPURatio       float64        `json:"cpu_ratio_peer_over_podium"`
	RSSRatio       float64        `json:"rss_ratio_peer_over_podium"`
	RSSGrowthRatio float64        `json:"rss_growth_ratio_peer_over_podium"`
	CPUTargetMet   bool           `json:"cpu_target_met"`
	RSSTargetMet   bool           `json:"rss_target_met"`
	LatTargetMet   bool           `json:"latency_target_met"`
	OK             bool           `json:"ok"`
	failures       []string
}

func report(w io.Writer, o options, pod, ngx *system, fix fixture.File, window float64, clk int64, busy float64) result {
	res := result{Bench: "transcode", K: o.k, WindowS: window, MachineBusyPct: busy,
		FixtureMbit: fix.Mbit()}
	expected := fix.Rate() * window
	fmt.Fprintf(w, "\ntranscode: %d H.264+Speex streams per system, %.1f s window, fixture %.2f Mbit/s, machine %.0f%% busy (all cores)\n\n",
		o.k, window, res.FixtureMbit, busy)
	k := float64(o.k)
	for _, s := range []*system{pod, ngx} {
		fail := func(format string, args ...any) {
			res.failures = append(res.failures, s.name+": "+fmt.Sprintf(format, args...))
		}
		cpuOf := func(ticks int64) float64 { return float64(ticks) / float64(clk) / window * 100 }
		r := systemResult{System: s.name,
			ServerCPUPct:     cpuOf(s.s1.serverTicks - s.s0.serverTicks),
			TranscoderCPUPct: cpuOf(s.s1.transTicks - s.s0.transTicks),
			RSSMBPeak:        mb(s.peakRSS), IdleRSSMB: mb(s.idleRSS), ServerAnonRSSMB: mb(s.peakAnon),
			Procs: 1 + len(s.transcoders), PlayerRestarts: proc.Restarts(s.players),
			TranscoderRestarts: proc.Restarts(s.transcoders) - s.restarts0,
		}
		if s.nRSS > 0 {
			r.RSSMBMean = mb(s.sumRSS / s.nRSS)
		}
		r.CPUPct = r.ServerCPUPct + r.TranscoderCPUPct
		r.PSSMBPerStream = mb(s.s1.pss) / k
		r.CPUPctPerStream = r.CPUPct / k
		r.RSSMBPerStream = r.RSSMBPeak / k
		r.RSSGrowthMBPerStream = (r.RSSMBPeak - r.IdleRSSMB) / k
		for i, t := range s.transcoders {
			if s.s0.transPIDs[i] == 0 || s.s0.transPIDs[i] != s.s1.transPIDs[i] {
				fail("%s was not running the whole window (its CPU is not fully counted): %s",
					t.Name, strings.TrimSpace(t.Log.String()))
			}
		}

		// Players: bytes, and FLV tags of the window (video, AAC audio only).
		fmt.Fprintf(w, "%s: per player in the window (expected ~%.1f MB each): MB/video tags/AAC tags:", s.name, expected/1e6)
		var sum int64
		mins := make([]float64, 0, len(s.players))
		for i, p := range s.players {
			d := s.watch1[i].sub(s.watch0[i])
			sum += d.bytes
			mins = append(mins, float64(d.bytes)/1e6)
			fmt.Fprintf(w, " %.1f/%d/%d", float64(d.bytes)/1e6, d.video, d.aac)
			last := strings.TrimSpace(p.Log.String())
			switch {
			case float64(d.bytes) < o.minShare*expected:
				fail("%s got %d bytes, expected about %.0f (stderr: %s)", p.Name, d.bytes, expected, last)
			case d.video == 0 || d.aac == 0:
				fail("%s got %d video and %d AAC audio tags (stderr: %s)", p.Name, d.video, d.aac, last)
			}
			if d.otherAudio > 0 {
				fail("%s got %d audio tags that are not AAC (SoundFormat %d)", p.Name, d.otherAudio, p.watch.lastOther.Load())
			}
		}
		fmt.Fprintln(w)
		r.MbitOut = float64(sum) * 8 / window / 1e6
		r.PlayerMBMin = slices.Min(mins)

		// Latency probes.
		var all, audio []time.Duration
		var outVideo int64
		for _, pr := range s.probes {
			ds, as, ov := pr.Result()
			all = append(all, ds...)
			audio = append(audio, as...)
			outVideo += ov
			r.ProbeReconnects += pr.Reconnects()
			last := pr.LastErr()
			in, out := pr.AudioFormats()
			otherOut := -out[soundFormatAAC]
			for _, n := range out {
				otherOut += n
			}
			switch {
			case in[soundFormatSpeex] == 0:
				fail("%s saw no Speex audio on the input %s (%s)", pr.Name, pr.InURL, last)
			case out[soundFormatAAC] == 0:
				fail("%s saw no AAC audio on the output %s (%s)", pr.Name, pr.OutURL, last)
			case otherOut > 0:
				fail("%s saw %d non-AAC audio messages on the output", pr.Name, otherOut)
			case ov == 0 || float64(len(ds)) < 0.5*float64(ov):
				fail("%s matched %d of %d output video frames to the input (%s)", pr.Name, len(ds), ov, last)
			}
		}
		r.Latency = summarize(all, outVideo)
		r.AudioLatency = summarize(audio, 0)
		if outVideo > 0 {
			r.MatchedShare = float64(len(all)) / float64(outVideo)
		}
		res.Systems = append(res.Systems, r)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tCPU % (1 core)\tserver + transcoders\tCPU %/stream\tRSS MB (peak)\tRSS MB/stream\tidle server MB\tgrowth MB/stream\t"+
		"hop latency median ms\tp95 ms\tframes matched\tMbit/s to players\t")
	for _, r := range res.Systems {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f + %.2f\t%.3f\t%.1f\t%.2f\t%.1f\t%.2f\t%.1f\t%.1f\t%d/%d\t%.1f\t\n", r.System, r.CPUPct,
			r.ServerCPUPct, r.TranscoderCPUPct, r.CPUPctPerStream, r.RSSMBPeak, r.RSSMBPerStream, r.IdleRSSMB,
			r.RSSGrowthMBPerStream, r.Latency.MedianMS, r.Latency.P95MS, r.Latency.Frames, r.Latency.OutVideo, r.MbitOut)
	}
	_ = tw.Flush()

	p, n := res.Systems[0], res.Systems[1]
	if p.CPUPctPerStream > 0 {
		res.CPURatio = n.CPUPctPerStream / p.CPUPctPerStream
	}
	if p.RSSMBPerStream > 0 {
		res.RSSRatio = n.RSSMBPerStream / p.RSSMBPerStream
	}
	if p.RSSGrowthMBPerStream > 0 {
		res.RSSGrowthRatio = n.RSSGrowthMBPerStream / p.RSSGrowthMBPerStream
	}
	res.CPUTargetMet = res.CPURatio >= targetCPURatio
	res.RSSTargetMet = res.RSSRatio >= targetRSSRatio
	res.LatTargetMet = p.Latency.Frames > 0 && p.Latency.MedianMS <= targetLatencyMS
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(w, "\nCPU per stream:    peer %.3f%% / podium %.3f%% = %.2fx less CPU (target >= %.0fx: %s)\n",
		n.CPUPctPerStream, p.CPUPctPerStream, res.CPURatio, targetCPURatio, met(res.CPUTargetMet))
	fmt.Fprintf(w, "RSS per stream:    peer %.2f MB / podium %.2f MB = %.1fx less memory (target >= %.0fx: %s)\n",
		n.RSSMBPerStream, p.RSSMBPerStream, res.RSSRatio, targetRSSRatio, met(res.RSSTargetMet))
	fmt.Fprintf(w, "RSS growth/stream: peer %.2f MB / podium %.2f MB = %.1fx (over each server's idle RSS; cross-check)\n",
		n.RSSGrowthMBPerStream, p.RSSGrowthMBPerStream, res.RSSGrowthRatio)
	fmt.Fprintf(w, "PSS per stream:    peer %.2f MB / podium %.2f MB = %.1fx (shared library pages split between the processes that map them; cross-check)\n",
		n.PSSMBPerStream, p.PSSMBPerStream, n.PSSMBPerStream/max(p.PSSMBPerStream, 1e-9))
	fmt.Fprintf(w, "transcode hop:     podium median %.1f ms p95 %.1f ms, peer median %.1f ms p95 %.1f ms (video frames; target podium median <= %.0f ms: %s)\n",
		p.Latency.MedianMS, p.Latency.P95MS, n.Latency.MedianMS, n.Latency.P95MS, targetLatencyMS, met(res.LatTargetMet))
	fmt.Fprintf(w, "audio hop (est.):  podium median %.1f ms p95 %.1f ms (%d frames), peer median %.1f ms p95 %.1f ms (%d frames); includes the AAC frame + look-ahead wait\n",
		p.AudioLatency.MedianMS, p.AudioLatency.P95MS, p.AudioLatency.Frames, n.AudioLatency.MedianMS, n.AudioLatency.P95MS, n.AudioLatency.Frames)
	fmt.Fprintf(w, "server RssAnon:    podium %.1f MB peak (the rest of its RSS is mapped code: libav*, x264...)\n", p.ServerAnonRSSMB)
	res.OK = len(res.failures) == 0
	b, _ := json.Marshal(res)
	fmt.Fprintf(w, "%s\n", b)
	return res
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
