package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/forward"
)

// reloadOnHUP re-reads the config file on every SIGHUP until ctx ends. A
// config that does not load or validate is logged and the running one
// kept. Forward (restarting only the destinations whose config changed)
// and access (lists, keys, hooks) apply a reload; other sections need a
// restart.
func reloadOnHUP(ctx context.Context, path string, fwd *forward.Manager, guard *access.Guard, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if path == "" {
			log.Warn("config reload ignored: running on the embedded default (no --config)")
			continue
		}
		cfg, err := configs.Load(path)
		if err != nil {
			log.Error("config reload failed, keeping the running config", "path", path, "err", err)
			continue
		}
		fwd.Reload(forward.SettingsFrom(cfg))
		guard.Reload(cfg)
		log.Info("config reloaded", "path", path, "applied", "forward, access")
	}
}
