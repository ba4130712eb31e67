// Command allocator measures the play-URL allocator: 1000 allocations
// (GET /api/v1/play) from 50 concurrent clients, each on its own loopback
// address (so the per-address rate limit stays as shipped), against one
// box and against two boxes sharing one real redis-server, with four
// serving nodes heartbeating into the same registry. It prints p50/p99
// latency (target p99 ≤ 20 ms) and the spread over the four nodes (target
// max/min ≤ 1.3). See bench/README.md, section "Allocator".
//
// The boxes run in this process (the same cluster and ui packages
// `podium serve` wires, on real HTTP listeners): what is measured is the
// allocator and the registry, not media.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/cluster"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/redistest"
	"github.com/podiumlive/podium/ui"
)

type options struct {
	n, clients, nodes int
	pace              time.Duration // the whole run's length when paced
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "allocations per scenario")
	flag.IntVar(&o.clients, "c", 50, "concurrent clients (each its own 127.0.0.x address)")
	flag.IntVar(&o.nodes, "nodes", 4, "serving nodes")
	flag.DurationVar(&o.pace, "pace", 10*time.Second, "the paced runs spread the n allocations evenly over this (1000 students joining in 10 s); 0: closed loop only")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to FILE")
	harness.ParseFlags()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	harness.Main("allocator", func(ctx context.Context) error { return run(ctx, o) })
}

// result is one scenario's figures.
type result struct {
	Scenario string         `json:"scenario"`
	Load     string         `json:"load"`
	N        int            `json:"n"`
	Errors   int            `json:"errors"`
	P50Ms    float64        `json:"p50_ms"`
	P99Ms    float64        `json:"p99_ms"`
	MaxMs    float64        `json:"max_ms"`
	Spread   float64        `json:"spread_max_min"`
	PerNode  map[string]int `json:"per_node"`
	PerBox   []int          `json:"per_box"`
	Seconds  float64        `json:"seconds"`
}

func run(ctx context.Context, o options) error {
	rd, err := redistest.Run()
	if err != nil {
		return err
	}
	defer rd.Stop()
	var results []result
	for _, sc := range []struct {
		name  string
		boxes int
		redis bool
	}{{"1 box, memory registry", 1, false}, {"1 box, Redis", 1, true}, {"2 boxes, one Redis", 2, true}} {
		paces := []time.Duration{0}
		if o.pace > 0 {
			paces = append(paces, o.pace)
		}
		for _, pace := range paces {
			r, err := scenario(ctx, o, sc.name, sc.boxes, sc.redis, rd.URL(), pace)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			results = append(results, r)
		}
	}
	fmt.Printf("\n%-24s %-16s %6s %6s %8s %8s %8s %8s  %s\n", "scenario", "load", "n", "errors", "p50 ms", "p99 ms", "max ms", "spread", "per node")
	var failures []string
	for _, r := range results {
		fmt.Printf("%-24s %-16s %6d %6d %8.2f %8.2f %8.2f %8.3f  %v per box %v\n", r.Scenario, r.Load, r.N, r.Errors, r.P50Ms, r.P99Ms, r.MaxMs, r.Spread, r.PerNode, r.PerBox)
		if r.Errors > 0 {
			failures = append(failures, fmt.Sprintf("%s: %d allocations failed", r.Scenario, r.Errors))
		}
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("%s, %s: p99/target %.2f (p99 %.2f ms, target 20 ms); spread max/min %.3f (target 1.3)\n", r.Scenario, r.Load, r.P99Ms/20, r.P99Ms, r.Spread)
	}
	b, _ := json.Marshal(map[string]any{"bench": "allocator", "results": results})
	fmt.Println(string(b))
	return harness.Failed("allocator", failures)
}

// scenario runs the boxes and nodes, makes the allocations, and stops
// everything.
func scenario(ctx context.Context, o options, name string, nBoxes int, useRedis bool, redisURL string, pace time.Duration) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	mem := cluster.NewMemory(nil)
	var regs []cluster.Registry
	newReg := func() (cluster.Registry, error) {
		if !useRedis {
			return mem, nil
		}
		r, err := cluster.NewRedis(redisURL)
		if err != nil {
			return nil, err
		}
		regs = append(regs, r)
		return r, nil
	}
	defer func() {
		for _, r := range regs {
			_ = r.Close()
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// The serving nodes: real heartbeats, a ready stream, no viewers (the
	// bench's clients never play), so only the allocations count.
	for i := range o.nodes {
		reg, err := newReg()
		if err != nil {
			return result{}, err
		}
		id := fmt.Sprintf("slave-%d", i+1)
		n := cluster.New(reg, cluster.Config{Node: id, PublicURL: "http://" + id + ":8080", Serve: true, Heartbeat: 2 * time.Second}, func() cluster.Local {
			return cluster.Local{Streams: []cluster.Stream{{Vhost: "transcode", App: "live", Name: "room101", HLS: "/live/room101.m3u8"}}}
		}, log)
		if err := n.Beat(ctx); err != nil {
			return result{}, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); n.Run(ctx) }()
	}
	// The boxes that answer.
	var urls []string
	for i := range nBoxes {
		reg, err := newReg()
		if err != nil {
			return result{}, err
		}
		c := cluster.New(reg, cluster.Config{Node: fmt.Sprintf("box-%d", i+1), PublicURL: "http://box", Heartbeat: 2 * time.Second, ViewTTL: cluster.DefaultViewTTL}, func() cluster.Local { return cluster.Local{} }, log)
		if err := c.Beat(ctx); err != nil {
			return result{}, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(ctx) }()
		hub := stream.NewHub(stream.DefaultOptions(), log)
		defer hub.Close()
		dir, err := os.MkdirTemp("", "podium-bench-allocator-")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(dir)
		u, err := ui.New(ui.Deps{Hub: hub, Cluster: c}, ui.Options{AdminPassword: "bench-admin-password", DataDir: dir, Notice: io.Discard}, log)
		if err != nil {
			return result{}, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return result{}, err
		}
		srv := &http.Server{Handler: u.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		urls = append(urls, "http://"+ln.Addr().String()+"/api/v1/play?app=live&stream=room101")
	}

	lat := make([]time.Duration, 0, o.n)
	perNode := map[string]int{}
	perBox := make([]int, nBoxes)
	errs := 0
	var mu sync.Mutex
	jobs := make(chan int)
	start := time.Now()
	var cw sync.WaitGroup
	for w := range o.clients {
		client := clientFrom(w)
		cw.Add(1)
		go func() {
			defer cw.Done()
			defer client.CloseIdleConnections()
			for j := range jobs {
				box := j % nBoxes
				t0 := time.Now()
				node, err := allocate(ctx, client, urls[box])
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
					if errs <= 3 {
						slog.Warn("allocation failed", "err", err)
					}
				} else {
					lat = append(lat, d)
					perNode[node]++
					perBox[box]++
				}
				mu.Unlock()
			}
		}()
	}
	for j := range o.n {
		if pace > 0 {
			time.Sleep(time.Until(start.Add(pace * time.Duration(j) / time.Duration(o.n))))
		}
		jobs <- j
	}
	close(jobs)
	cw.Wait()
	took := time.Since(start)
	if len(lat) == 0 {
		return result{}, errors.New("no allocation succeeded")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	counts := make([]int, 0, len(perNode))
	for _, c := range perNode {
		counts = append(counts, c)
	}
	spread := 0.0
	if len(counts) == o.nodes && slices.Min(counts) > 0 {
		spread = float64(slices.Max(counts)) / float64(slices.Min(counts))
	}
	load := fmt.Sprintf("closed loop x%d", o.clients)
	if pace > 0 {
		load = fmt.Sprintf("%d in %v", o.n, pace)
	}
	return result{Scenario: name, Load: load, N: o.n, Errors: errs, P50Ms: q(0.50), P99Ms: q(0.99), MaxMs: q(1), Spread: spread,
		PerNode: perNode, PerBox: perBox, Seconds: took.Seconds()}, nil
}

// clientFrom is an HTTP client whose connections come from 127.0.0.(2+i):
// each simulated student has its own address, as behind no NAT.
func clientFrom(i int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+(i+1)/250), byte(2+i%250))}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

func allocate(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var a struct {
		Code int `json:"code"`
		Data struct {
			Node string `json:"node"`
		} `json:"data"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	if res.StatusCode != http.StatusOK || a.Code != 0 {
		return "", fmt.Errorf("%s: %s", res.Status, a.Error)
	}
	return a.Data.Node, nil
}
