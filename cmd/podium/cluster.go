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
	"github.com/podiumlive/podium/ingest/httpflv"
	"github.com/podiumlive/podium/ingest/stream"
)

// clusterParts is the cluster stage as serve wires it.
type clusterParts struct {
	c     *cluster.Cluster
	reg   cluster.Registry
	meter *cluster.Meter
	cpu   func() float64 // set once the dashboard exists, before Run
}

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
		ViewTTL: cluster.DefaultViewTTL,
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
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return "http://" + net.JoinHostPort(host, port)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return "http://" + net.JoinHostPort(n.IP.String(), port)
			}
		}
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port)
}

// newCluster builds the cluster stage over the hub and HLS.
func newCluster(cfg *configs.Config, hub *stream.Hub, hlsMgr *hls.Manager, log *slog.Logger) (*clusterParts, error) {
	reg, name, err := newRegistry(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	cc := clusterConfig(cfg)
	cc.Backend = name
	p := &clusterParts{reg: reg, meter: cluster.NewMeter(cc.PlaySecret, 10*time.Second)}
	st := &localState{hub: hub, hls: hlsMgr, meter: p.meter, path: hlsURL(cfg), frames: map[stream.Key]frameMark{}}
	p.c = cluster.New(reg, cc, func() cluster.Local {
		l := st.read(time.Now())
		if p.cpu != nil {
			l.CPU = p.cpu()
		}
		return l
	}, log)
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
	for _, st := range s.hub.Streams() {
		stats := st.Stats()
		k := stats.Key
		seen[k] = true
		m, ok := s.frames[k]
		if !ok || stats.In.Bytes != m.bytes {
			m = frameMark{bytes: stats.In.Bytes, at: now}
			s.frames[k] = m
		}
		e := cluster.Stream{Vhost: k.Vhost, App: k.App, Name: k.Name, LastFrameMs: now.Sub(m.at).Milliseconds()}
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
