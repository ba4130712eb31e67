// Package av is the only home of go-astiav in Podium besides hwaccel's
// probe: thin wrappers that own libav objects. Every wrapper is used by one
// goroutine, frees what it allocates in Close (never by finalizers), and
// never lets a libav packet or frame escape: what leaves is Go-owned bytes.
package av

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
)

// logState rate-limits libav's log: a corrupt stream can make a decoder
// complain on every packet, and we never log per packet.
type logState struct {
	mu      sync.Mutex
	window  time.Time
	count   int
	dropped int
}

const logBurst = 20 // lines per second, then a summary

// InstallLog routes libav's log into log at Debug (info and below) or Warn
// (warnings and errors), at most logBurst lines a second. libav has one log
// callback per process, so this is called once, by main.
func InstallLog(log *slog.Logger) {
	st := &logState{}
	astiav.SetLogLevel(astiav.LogLevelWarning)
	astiav.SetLogCallback(func(c astiav.Classer, l astiav.LogLevel, _, msg string) {
		msg = strings.TrimSpace(msg)
		if msg == "" {
			return
		}
		now := time.Now()
		st.mu.Lock()
		if now.Sub(st.window) >= time.Second {
			if st.dropped > 0 {
				log.Warn("libav log lines suppressed", "count", st.dropped)
			}
			st.window, st.count, st.dropped = now, 0, 0
		}
		st.count++
		if st.count > logBurst {
			st.dropped++
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		level := slog.LevelDebug
		if l <= astiav.LogLevelWarning {
			level = slog.LevelWarn
		}
		attrs := []any{}
		if c != nil {
			if cl := c.Class(); cl != nil {
				attrs = append(attrs, "libav", cl.Name())
			}
		}
		log.Log(context.Background(), level, msg, attrs...)
	})
}
