package main

import (
	"log/slog"
	"strings"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	ingestrtsp "github.com/podiumlive/podium/ingest/rtsp"
	"github.com/podiumlive/podium/ingest/stream"
)

// newRTSPServer makes the RTSP server of listen.rtsp.
func newRTSPServer(cfg *configs.Config, hub *stream.Hub, guard *access.Guard, log *slog.Logger) *ingestrtsp.Server {
	return ingestrtsp.NewServer(ingestrtsp.ServerConfig{
		Addr:     cfg.Listen.RTSP,
		PlayWait: cfg.RTMP.PlayWait.Std(),
		Vhost:    func(name string) bool { return cfg.Vhost(name) != nil },
		Guard:    guard,
	}, hub, log)
}

// newSources makes the pulls of cfg.Sources (validated: publish is
// APP/STREAM, vhost exists).
func newSources(cfg *configs.Config, hub *stream.Hub, guard *access.Guard, log *slog.Logger) *ingestrtsp.Sources {
	var scs []ingestrtsp.SourceConfig
	for _, s := range cfg.Sources {
		app, name, _ := strings.Cut(s.Publish, "/")
		vhost := s.Vhost
		if vhost == "" {
			vhost = configs.DefaultVhost
		}
		scs = append(scs, ingestrtsp.SourceConfig{
			URL:       s.URL,
			Key:       stream.Key{Vhost: vhost, App: app, Name: name},
			Transport: s.Transport,
			OnDemand:  s.OnDemand,
		})
	}
	return ingestrtsp.NewSources(scs, hub, ingestrtsp.SourcesOptions{
		Guard:      guard,
		Downstream: func(k stream.Key) []stream.Key { return transcodeOutputs(cfg, k) },
	}, log)
}

// transcodeOutputs lists the streams the transcode engine makes from k,
// following transcode.to from vhost to vhost (validation rules out loops;
// the bound is a second guard).
func transcodeOutputs(cfg *configs.Config, k stream.Key) []stream.Key {
	var out []stream.Key
	for range len(cfg.Vhosts) {
		v := cfg.Vhost(k.Vhost)
		if v == nil || v.Transcode == nil || v.Transcode.To == "" {
			break
		}
		k = stream.Key{Vhost: v.Transcode.To, App: k.App, Name: k.Name + v.Transcode.Suffix}
		out = append(out, k)
	}
	return out
}
