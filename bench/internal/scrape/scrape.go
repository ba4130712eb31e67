// Package scrape reads a Podium's /metrics (Prometheus text) for the
// reliability benches: what an operator's Prometheus would see.
package scrape

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Client reads one Podium's /metrics with the admin login.
type Client struct {
	Base, Password string
	http           http.Client
}

// New is a client of the Podium whose HTTP listens on port.
func New(port int, password string) *Client {
	return &Client{Base: fmt.Sprintf("http://127.0.0.1:%d", port), Password: password, http: http.Client{Timeout: 10 * time.Second}}
}

// Samples are /metrics' samples by "name{labels}".
type Samples map[string]float64

// Metrics fetches /metrics.
func (c *Client) Metrics() (Samples, error) {
	req, err := http.NewRequest(http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("admin", c.Password)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", res.Status)
	}
	out := Samples{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// Sum adds every sample of the family name (all label sets).
func (s Samples) Sum(name string) float64 {
	var t float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// Get fetches path with the admin login and returns the body.
func (c *Client) Get(path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, c.Base+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("admin", c.Password)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return b, nil
}

// SaveProfiles writes Podium's heap (after a GC) and goroutine profiles
// (/debug/pprof) into dir as heap-PHASE.pb.gz and goroutine-PHASE.txt, for
// `go tool pprof -base`; nothing when dir is "".
func (c *Client) SaveProfiles(dir, phase string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pprof dir: %w", err)
	}
	for _, p := range []struct{ path, file string }{
		{"/debug/pprof/heap?gc=1", "heap-" + phase + ".pb.gz"},
		{"/debug/pprof/goroutine?debug=1", "goroutine-" + phase + ".txt"},
	} {
		b, err := c.Get(p.path)
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.file), b, 0o644); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	slog.Info("profiles saved", "dir", dir, "phase", phase)
	return nil
}

// Slope is the least-squares slope of ys over xs (units of y per unit of
// x); 0 with fewer than two points.
func Slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
