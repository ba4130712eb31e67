package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/podiumlive/podium/cluster"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hls"
	"github.com/podiumlive/podium/ingest/edge"
	"github.com/podiumlive/podium/ingest/httpflv"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/groups"
)

// clusterParts is the cluster stage as serve wires it.
type clusterParts struct {
	c     *cluster.Cluster
	reg   cluster.Registry
	meter *cluster.Meter
	cpu   func() float64 // set once the dashboard exists, before Run
	st    *localState
	// grouped: a cluster section is configured (the Directory is handed
	// to forward and the edge).
	grouped bool
}

// directory is the registry's groups for forward and the edge: nil when
// the config has no cluster section (a group:NAME entry then matches
// nothing; configs rejects one without the section anyway).
func (p *clusterParts) directory() groups.Directory {
	if p == nil || p.c == nil || !p.grouped {
		return nil
	}
	return p.c
}

// useHLS lets the heartbeat report which streams have HLS (HLS is built
// after forward, which needs the cluster first). Call before run.
func (p *clusterParts) useHLS(h *hls.Manager) { p.st.hls = h }

// newRegistry opens the section's registry: Redis, or memory for a box
// alone. It names the registry for logs (the password redacted).
func newRegistry(cc *configs.Cluster) (cluster.Registry, string, error) {
	if cc == nil || cc.Redis == "" {
		return cluster.NewMemory(nil), "memory", nil
	}
	r, err := cluster.NewRedis(cc.Redis)
	if err != nil {
		return nil, "", err
	}
	name := cc.Redis
	if u, err := url.Parse(cc.Redis); err == nil {
		name = u.Redacted()
	}
	return r, name, nil
}

// clusterConfig resolves the section's defaults: node = host name, line =
// node, public_url = http://<first non-loopback IP>:<http port>, serve =
// a vhost has HLS (or is an edge).
func clusterConfig(cfg *configs.Config) cluster.Config {
	cc := cfg.Cluster
	if cc == nil {
		cc = &configs.Cluster{Heartbeat: configs.Duration(2 * time.Second)}
	}
	out := cluster.Config{
		Node: cc.Node, Line: cc.Line, PublicURL: cc.PublicURL, MaxViewers: cc.MaxViewers,
		Heartbeat: cc.Heartbeat.Std(), PlaySecret: cc.PlaySecret, Pulls: hasEdgeVhost(cfg),
		ViewTTL: cluster.DefaultViewTTL, Group: cc.Group, RTMP: cc.RTMP,
	}
	if out.RTMP == "" {
		out.RTMP = defaultHostPort(cfg.Listen.RTMP, "1935")
	}
	if out.Node == "" {
		out.Node = hostNodeID()
	}
	if out.Line == "" {
		out.Line = out.Node
	}
	if out.PublicURL == "" {
		out.PublicURL = defaultPublicURL(cfg.Listen.HTTP)
	}
	if cc.Serve != nil {
		out.Serve = *cc.Serve
	} else {
		out.Serve = out.Pulls
		for _, v := range cfg.Vhosts {
			if v.HLS != nil && v.HLS.Enabled {
				out.Serve = true
			}
		}
	}
	return out
}

// hasEdgeVhost reports a vhost that pulls from an origin on demand
// (`cluster: {mode: remote}` under a vhost): the box can serve a class it
// does not have yet to an HTTP-FLV player.
func hasEdgeVhost(cfg *configs.Config) bool {
	for i := range cfg.Vhosts {
		if cfg.Vhosts[i].Edge() {
			return true
		}
	}
	return false
}

// hostNodeID is the host name, made a valid node id.
func hostNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "podium"
	}
	var b strings.Builder
	for _, r := range h {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "podium"
	}
	return b.String()
}

// defaultPublicURL is http://<first non-loopback IPv4>:<port of listen>,
// or the listen host when it names one.
func defaultPublicURL(listen string) string {
	return "http://" + defaultHostPort(listen, "8080")
}

// defaultHostPort is where other boxes reach a listener: its own address
// when it names one (127.0.0.1:1935 in tests), else <first non-loopback
// IPv4>:<port>.
func defaultHostPort(listen, defPort string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return net.JoinHostPort("127.0.0.1", defPort)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return net.JoinHostPort(host, port)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return net.JoinHostPort(n.IP.String(), port)
			}
		}
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// newCluster builds the cluster stage over the hub (HLS joins with
// useHLS). A box in a group claims a stream as soon as it is published
// and releases it as soon as it ends: the hub's events nudge the
// heartbeat.
func newCluster(cfg *configs.Config, hub *stream.Hub, log *slog.Logger) (*clusterParts, error) {
	reg, name, err := newRegistry(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	cc := clusterConfig(cfg)
	cc.Backend = name
	p := &clusterParts{reg: reg, meter: cluster.NewMeter(cc.PlaySecret, 10*time.Second), grouped: cfg.Cluster != nil}
	st := &localState{hub: hub, meter: p.meter, path: hlsURL(cfg), frames: map[stream.Key]frameMark{}}
	p.st = st
	p.c = cluster.New(reg, cc, func() cluster.Local {
		l := st.read(time.Now())
		if p.cpu != nil {
			l.CPU = p.cpu()
		}
		return l
	}, log)
	if cc.Group != "" {
		hub.Listen(func(ev stream.Event) {
			if ev.Type == stream.EventPublish || ev.Type == stream.EventUnpublish {
				p.c.Nudge()
			}
		})
	}
	return p, nil
}

// localState turns the hub, HLS and the meter into the heartbeat's Local.
// Only the heartbeat goroutine calls read.
type localState struct {
	hub   *stream.Hub
	hls   *hls.Manager
	meter *cluster.Meter
	path  func(stream.Key) string

	mu        sync.Mutex
	frames    map[stream.Key]frameMark
	lastBytes uint64
	lastAt    time.Time
}

// frameMark is when a stream's input last grew.
type frameMark struct {
	bytes uint64
	at    time.Time
}

// transcodeProtocol is the publisher protocol of a transcode's output
// (its Remote is the input's key).
const transcodeProtocol = "transcode"

// isPlayer: readers that are viewers (not forwards, HLS or transcodes).
func isPlayer(proto string) bool {
	return proto == "rtmp" || proto == httpflv.Protocol
}

func (s *localState) read(now time.Time) cluster.Local {
	s.mu.Lock()
	defer s.mu.Unlock()
	hlsReady := map[stream.Key]bool{}
	if s.hls != nil {
		for _, h := range s.hls.Stats().Streams {
			if h.Live && h.SegmentsWritten > 0 {
				hlsReady[stream.Key{Vhost: h.Vhost, App: h.App, Name: h.Stream}] = true
			}
		}
	}
	viewers := s.meter.Viewers(now)
	var l cluster.Local
	seen := map[stream.Key]bool{}
	counted := map[string]bool{}
	all := s.hub.Streams()
	// A pulled copy (the edge's) is never claimed, nor is the output of a
	// transcode of one.
	pulled := map[string]bool{}
	for _, st := range all {
		if st.Publisher().Protocol == edge.Protocol {
			pulled[st.Key().String()] = true
		}
	}
	for _, st := range all {
		stats := st.Stats()
		k := stats.Key
		seen[k] = true
		m, ok := s.frames[k]
		if !ok || stats.In.Bytes != m.bytes {
			m = frameMark{bytes: stats.In.Bytes, at: now}
			s.frames[k] = m
		}
		e := cluster.Stream{Vhost: k.Vhost, App: k.App, Name: k.Name, LastFrameMs: now.Sub(m.at).Milliseconds()}
		switch stats.Publisher.Protocol {
		case edge.Protocol:
			e.Pulled = true
		case transcodeProtocol:
			e.Transcoded, e.Pulled = true, pulled[stats.Publisher.Remote]
			l.Transcodes++
		}
		if stats.Video != nil || stats.Audio != nil {
			e.FLV = "/" + k.App + "/" + k.Name + ".flv"
			if k.Vhost != configs.DefaultVhost {
				e.FLV += "?vhost=" + url.QueryEscape(k.Vhost)
			}
		}
		if hlsReady[k] {
			e.HLS = s.path(k)
			if ak := k.App + "/" + k.Name; !counted[ak] {
				counted[ak] = true
				e.Viewers = viewers[ak]
			}
		}
		for _, r := range stats.Readers {
			if isPlayer(r.Info.Protocol) {
				e.Viewers++
				l.EgressBps += int64(r.Out.Bitrate)
			}
		}
		l.Viewers += e.Viewers
		l.Streams = append(l.Streams, e)
	}
	// The default vhost first: a play without ?vhost= gets its plain URL
	// when both it and a transcode have the stream.
	slices.SortFunc(l.Streams, func(a, b cluster.Stream) int {
		if (a.Vhost == configs.DefaultVhost) != (b.Vhost == configs.DefaultVhost) {
			if a.Vhost == configs.DefaultVhost {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Vhost+"/"+a.App+"/"+a.Name, b.Vhost+"/"+b.App+"/"+b.Name)
	})
	for k := range s.frames {
		if !seen[k] {
			delete(s.frames, k)
		}
	}
	b := s.meter.Bytes()
	if !s.lastAt.IsZero() {
		if d := now.Sub(s.lastAt).Seconds(); d > 0 {
			l.EgressBps += int64(float64(b-s.lastBytes) * 8 / d)
		}
	}
	s.lastBytes, s.lastAt = b, now
	return l
}

// runCluster runs the heartbeat until ctx ends and closes the registry.
func (p *clusterParts) run(ctx context.Context) {
	p.c.Run(ctx)
	_ = p.reg.Close()
}
