package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/forward"
)

// reloadOnHUP re-reads the config file on every SIGHUP until ctx ends. A
// config that does not load or validate is logged and the running one
// kept. Forward (restarting only the destinations whose config changed)
// and access (lists, keys, hooks) apply a reload; every other changed key
// (against running, the config Podium started with) is named in a
// warning: it needs a restart, and is not silently dropped.
func reloadOnHUP(ctx context.Context, path string, running *configs.Config, fwd *forward.Manager, guard *access.Guard, log *slog.Logger) {
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
		if keys := needRestart(running, cfg); len(keys) > 0 {
			log.Warn("config reload: these changes take effect after a restart", "keys", strings.Join(keys, ", "))
		}
	}
}

// reloaded matches the keys a reload applies: a vhost's forward, security
// and hooks.
var reloaded = regexp.MustCompile(`^vhosts\[[^\]]*\]\.(forward|security|hooks)(\.|$)`)

// needRestart is what changed from running to cfg that a reload does not
// apply.
func needRestart(running, cfg *configs.Config) []string {
	var out []string
	for _, k := range configs.Changed(running, cfg) {
		// dvr reads its on_dvr hooks at start.
		if !reloaded.MatchString(k) || strings.HasSuffix(k, ".hooks.on_dvr") {
			out = append(out, k)
		}
	}
	return out
}
