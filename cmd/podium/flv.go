package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/ingest/httpflv"
	"github.com/podiumlive/podium/ingest/stream"
)

// flvMergeWait is how often an HTTP-FLV player is written.
const flvMergeWait = 100 * time.Millisecond

// newFLVServer makes the HTTP-FLV player endpoint (/APP/STREAM.flv on the
// HTTP listener): plays wait rtmp.play_wait for their stream, as RTMP
// plays do, and all end when ctx does. A play that names no vhost gets
// __defaultVhost__'s transcoded twin when it is transcoded (as HLS serves
// it, with the default config): what a browser can play.
func newFLVServer(ctx context.Context, cfg *configs.Config, hub *stream.Hub, guard *access.Guard, log *slog.Logger) *httpflv.Server {
	return httpflv.New(ctx, httpflv.Config{
		PlayWait: cfg.RTMP.PlayWait.Std(),
		// Players are written ten times a second: a wake-up and a write
		// per packet cost ~6x the CPU per player (measured, 50 players).
		MergeWait: flvMergeWait,
		Vhost:     func(name string) bool { return cfg.Vhost(name) != nil },
		Access:    guard,
		Unnamed: func(k stream.Key) stream.Key {
			v := cfg.Vhost(k.Vhost)
			if v == nil || v.Transcode == nil || v.Transcode.To == "" {
				return k
			}
			return stream.Key{Vhost: v.Transcode.To, App: k.App, Name: k.Name + v.Transcode.Suffix}
		},
	}, hub, log)
}
