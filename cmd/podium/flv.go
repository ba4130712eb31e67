package main

import (
	"context"
	"log/slog"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/ingest/httpflv"
	"github.com/podiumlive/podium/ingest/stream"
)

// newFLVServer makes the HTTP-FLV player endpoint (/APP/STREAM.flv on the
// HTTP listener): plays wait rtmp.play_wait for their stream, as RTMP
// plays do, and all end when ctx does.
func newFLVServer(ctx context.Context, cfg *configs.Config, hub *stream.Hub, guard *access.Guard, log *slog.Logger) *httpflv.Server {
	return httpflv.New(ctx, httpflv.Config{
		PlayWait: cfg.RTMP.PlayWait.Std(),
		Vhost:    func(name string) bool { return cfg.Vhost(name) != nil },
		Access:   guard,
	}, hub, log)
}
