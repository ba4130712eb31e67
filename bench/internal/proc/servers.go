package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Sleep waits d, or fails when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case <-time.After(d):
		return nil
	}
}

// Server is a started server process and its log tail.
type Server struct {
	Child *Child
	Logs  *Tail
}

// StartNginx writes a minimal nginx.conf under dir (nginx-rtmp on port with
// the given application blocks, e.g. "application live { live on; }") and
// runs nginx in the foreground with the master and one worker; never the
// system config, never a system port.
func StartNginx(ctx context.Context, g *Group, nginx, module, dir string, port int, apps string) (*Server, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("nginx dir: %w", err)
	}
	conf := fmt.Sprintf(`load_module %s;
worker_processes 1;
master_process on;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 1024; }
rtmp {
    access_log %s/logs/rtmp_access.log;
    server {
        listen 127.0.0.1:%d;
        chunk_size 4096;
        %s
    }
}
`, module, dir, dir, dir, port, apps)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write nginx.conf: %w", err)
	}
	cmd := exec.Command(nginx, "-c", path, "-p", dir+"/", "-e", filepath.Join(dir, "logs", "error.log"), "-g", "daemon off;")
	return startServer(ctx, g, "nginx", cmd, port)
}

// StartPodium writes a config under dir (listen addresses, data_dir, warn
// logging, then body: vhosts and any other top-level keys) and runs
// podium serve.
func StartPodium(ctx context.Context, g *Group, bin, dir string, rtmpPort, httpPort int, body string) (*Server, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("podium dir: %w", err)
	}
	conf := fmt.Sprintf("listen: {rtmp: \"127.0.0.1:%d\", http: \"127.0.0.1:%d\"}\ndata_dir: %s\nlog: {level: warn}\n%s",
		rtmpPort, httpPort, filepath.Join(dir, "data"), body)
	path := filepath.Join(dir, "podium.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write podium.yaml: %w", err)
	}
	return startServer(ctx, g, "podium", exec.Command(bin, "serve", "--config", path), rtmpPort)
}

func startServer(ctx context.Context, g *Group, name string, cmd *exec.Cmd, port int) (*Server, error) {
	logs := NewTail(8192)
	cmd.Stdout, cmd.Stderr = logs, logs
	c, err := g.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	if err := WaitListen(ctx, c, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, logs)
	}
	return &Server{Child: c, Logs: logs}, nil
}
