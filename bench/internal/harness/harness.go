// Package harness is the frame every bench runs in: the flags they share,
// the checks and the temp dir before a run, the signal context around it,
// and the measurement window.
package harness

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podiumlive/podium/bench/internal/proc"
)

// Env is what the -podium, -nginx, -nginx-rtmp-module, -fixtures and -keep
// flags say: the servers under test, the fixture cache, and whether to keep
// the run's temp dir.
type Env struct {
	Podium   string // podium binary; absolute once Begin checked it
	Nginx    string // nginx binary
	Module   string // nginx-rtmp dynamic module
	Fixtures string // where fixtures are cached
	Keep     bool
}

// Flags registers e's flags on the command line.
func (e *Env) Flags() {
	flag.StringVar(&e.Podium, "podium", "bin/podium", "podium binary to measure (build it with: go build -o bin/podium ./cmd/podium)")
	flag.StringVar(&e.Nginx, "nginx", "nginx", "nginx binary")
	flag.StringVar(&e.Module, "nginx-rtmp-module", "/usr/lib/nginx/modules/ngx_rtmp_module.so", "nginx-rtmp dynamic module")
	flag.StringVar(&e.Fixtures, "fixtures", filepath.Join(os.TempDir(), "podium-bench-fixtures"), "where the fixture FLV is cached")
	flag.BoolVar(&e.Keep, "keep", false, "keep the temp dir with the configs and logs")
}

// ParseFlags parses the command line and sends log records (Info and up)
// to stderr as text.
func ParseFlags() {
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// Main runs the bench named name until it returns or SIGINT/SIGTERM ends
// it, and exits 1 if it failed.
func Main(name string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		slog.Error(name+" bench failed", "err", err)
		os.Exit(1)
	}
}

// Failed is nil without failures, else the error of a run whose checks
// failed: one failure a line.
func Failed(bench string, failures []string) error {
	if len(failures) == 0 {
		return nil
	}
	return fmt.Errorf("%s check failed:\n  %s", bench, strings.Join(failures, "\n  "))
}

// Run is one run's frame: its temp dir, and a process group stopped at End.
type Run struct {
	Dir   string     // configs and logs
	Group proc.Group // its processes
	env   *Env
}

// Begin checks that tools (ffmpeg, ...), nginx, podium and the nginx-rtmp
// module are there, makes e.Podium absolute, and starts a run in a new temp
// dir named after prefix.
func (e *Env) Begin(prefix string, tools ...string) (*Run, error) {
	for _, tool := range append(tools, e.Nginx, e.Podium) {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("need %s: %w", tool, err)
		}
	}
	if _, err := os.Stat(e.Module); err != nil {
		return nil, fmt.Errorf("nginx-rtmp module (packaging/deps-debian.sh installs it): %w", err)
	}
	bin, err := filepath.Abs(e.Podium)
	if err != nil {
		return nil, fmt.Errorf("podium path: %w", err)
	}
	e.Podium = bin
	r := &Run{env: e}
	if r.Dir, err = os.MkdirTemp("", prefix); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if e.Keep {
		slog.Info("keeping temp dir", "dir", r.Dir)
	}
	return r, nil
}

// Servers are the two servers under test in a run.
type Servers struct {
	Podium, Nginx         *proc.Server
	PodiumPort, NginxPort int // RTMP
	PodiumHTTPPort        int
}

// StartServers runs podium with the config body (see proc.StartPodium) in
// Dir/podium, then nginx-rtmp with the application blocks apps (see
// proc.StartNginx) in Dir/nginx, each on free ports, in the run's group.
func (r *Run) StartServers(ctx context.Context, body, apps string) (Servers, error) {
	var s Servers
	ports, err := proc.FreePorts(3)
	if err != nil {
		return s, err
	}
	s.PodiumPort, s.PodiumHTTPPort, s.NginxPort = ports[0], ports[1], ports[2]
	if s.Podium, err = proc.StartPodium(ctx, &r.Group, r.env.Podium, filepath.Join(r.Dir, "podium"), ports[0], ports[1], body); err != nil {
		return s, err
	}
	if s.Nginx, err = proc.StartNginx(ctx, &r.Group, r.env.Nginx, r.env.Module, filepath.Join(r.Dir, "nginx"), ports[2], apps); err != nil {
		return s, err
	}
	return s, nil
}

// End stops the run's processes (SIGTERM, SIGKILL after 5 s) and removes
// its temp dir unless -keep.
func (r *Run) End() {
	r.Group.StopAll(5 * time.Second)
	if !r.env.Keep {
		_ = os.RemoveAll(r.Dir)
	}
}
