package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

type fixtureFile struct {
	path    string
	size    int64
	seconds float64
}

// rate is the fixture's bytes per second.
func (f fixtureFile) rate() float64 { return float64(f.size) / f.seconds }

// fixture makes (once, cached in dir) a 20 s 854x480 30 fps H.264 900 kbit/s
// + AAC 96 kbit/s FLV (about 1 Mbit/s), so publishers send it with -c copy.
func fixture(ctx context.Context, dir string) (fixtureFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fixtureFile{}, fmt.Errorf("fixture dir: %w", err)
	}
	path := filepath.Join(dir, "forward-480p30-900k-aac.flv")
	if _, err := os.Stat(path); err != nil {
		slog.Info("making the fixture (once)", "path", path)
		tmp := path + ".tmp"
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "900k", "-g", "60",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "flv", tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp)
			return fixtureFile{}, fmt.Errorf("make fixture: %w: %s", err, out)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fixtureFile{}, fmt.Errorf("make fixture: %w", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fixtureFile{}, fmt.Errorf("fixture: %w", err)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		return fixtureFile{}, fmt.Errorf("ffprobe fixture: %w", err)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || secs <= 0 {
		return fixtureFile{}, fmt.Errorf("fixture duration %q: %v", out, err)
	}
	return fixtureFile{path: path, size: st.Size(), seconds: secs}, nil
}
