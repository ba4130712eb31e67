package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"time"

	"github.com/q191201771/lal/pkg/httpflv"

	"github.com/podiumlive/podium/internal/loadgen"
)

// hlsPlayer polls a live playlist every 2 s and downloads each new
// segment, as hls.js does, counting segments and errors. Until the
// playlist first answers (the slave has cut no segment yet) a failure is
// the stream not being there yet, not an error.
type hlsPlayer struct {
	mu       sync.Mutex
	segments int
	errors   int
	lastErr  string
}

func (h *hlsPlayer) run(ctx context.Context, url string) {
	c := http.Client{Timeout: 10 * time.Second}
	seen := map[string]bool{}
	base, _ := neturl.Parse(url)
	started := false
	for ctx.Err() == nil {
		err := func() error {
			body, err := get(ctx, &c, url)
			if err != nil {
				if !started {
					return nil
				}
				return err
			}
			started = true
			for _, line := range strings.Split(string(body), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") || seen[line] {
					continue
				}
				ref, err := neturl.Parse(line)
				if err != nil {
					return err
				}
				if _, err := get(ctx, &c, base.ResolveReference(ref).String()); err != nil {
					return err
				}
				seen[line] = true
				h.mu.Lock()
				h.segments++
				h.mu.Unlock()
			}
			return nil
		}()
		if err != nil && ctx.Err() == nil {
			h.mu.Lock()
			h.errors++
			h.lastErr = err.Error()
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return b, nil
}

func (h *hlsPlayer) stats() (segments, errors int, last string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.segments, h.errors, h.lastErr
}

// churner publishes for every, leaves for 2 s, and publishes again.
type churner struct {
	mu      sync.Mutex
	cycles  int
	errors  int
	lastErr string
}

func (c *churner) run(ctx context.Context, url string, tags []httpflv.Tag, every time.Duration) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, every)
		err := loadgen.Publish(pctx, url, tags, true, 0)
		cancel()
		c.mu.Lock()
		c.cycles++
		if err != nil && ctx.Err() == nil {
			c.errors++
			c.lastErr = err.Error()
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (c *churner) stats() (cycles, errors int, last string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cycles, c.errors, c.lastErr
}
