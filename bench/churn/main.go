// Command churn publishes and unpublishes N distinct streams (default
// 1000) on a transcoding Podium (the embedded default's vhosts: transcode
// into vhost transcode, HLS), with N short plays of a live stream beside
// them (RTMP, HTTP-FLV and HLS in turn), and reports every 100 cycles
// podium's RSS, Go heap, goroutines, open files and listed streams, then
// what holds the memory at the end (a heap profile from
// /debug/pprof/heap, read with `go tool pprof -top`). Is the RSS growth a
// leak or a high-water mark? See docs/reliability.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/podiumlive/podium/bench/internal/fixture"
	"github.com/podiumlive/podium/bench/internal/harness"
	"github.com/podiumlive/podium/bench/internal/proc"
	"github.com/podiumlive/podium/bench/internal/scrape"
	"github.com/podiumlive/podium/internal/loadgen"
)

const password = "churn-bench"

func main() {
	var (
		bin, fixtures, profile string
		cycles, every          int
		keep                   bool
	)
	flag.StringVar(&bin, "podium", "bin/podium", "podium binary (go build -o bin/podium ./cmd/podium)")
	flag.StringVar(&fixtures, "fixtures", filepath.Join(os.TempDir(), "podium-bench-fixtures"), "fixture cache")
	flag.StringVar(&profile, "profile", "", "save the final heap profile here (default: in the temp dir, removed unless -keep)")
	flag.IntVar(&cycles, "n", 1000, "publish/unpublish cycles (and as many short plays)")
	flag.IntVar(&every, "every", 100, "report every this many cycles")
	flag.BoolVar(&keep, "keep", false, "keep the temp dir (config, logs, profile)")
	harness.ParseFlags()
	loadgen.Silence()
	harness.Main("churn", func(ctx context.Context) error {
		return run(ctx, bin, fixtures, profile, cycles, every, keep)
	})
}

type row struct {
	cycle                 int
	rssMB, heapMB, sysMB  float64
	goroutines, fds, list int
}

func run(ctx context.Context, bin, fixtures, profile string, cycles, every int, keep bool) error {
	dir, err := os.MkdirTemp("", "podium-churn-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	var g proc.Group
	defer g.StopAll(5 * time.Second)
	file, err := fixture.Ensure(ctx, fixtures, fixture.Speex)
	if err != nil {
		return err
	}
	tags, err := loadgen.ReadFLV(file)
	if err != nil {
		return err
	}
	ports, err := proc.FreePorts(2)
	if err != nil {
		return err
	}
	// The embedded default's vhosts (no vhosts key): transcode + HLS.
	srv, err := proc.StartPodium(ctx, &g, bin, filepath.Join(dir, "podium"), ports[0], ports[1],
		fmt.Sprintf("auth: {admin_password: %s}\n", password))
	if err != nil {
		return err
	}
	pid := srv.Child.Cmd.Process.Pid
	m := scrape.New(ports[1], password)
	rtmp := func(path string) string { return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", ports[0], path) }
	httpURL := func(path string) string { return fmt.Sprintf("http://127.0.0.1:%d/%s", ports[1], path) }

	keepPub := proc.NewPeer("keep", fixtureArgs(file, rtmp("live/keep"))...)
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go keepPub.Keep(pubCtx, &g)
	if err := waitHTTP(ctx, httpURL("live/keep.m3u8"), 30*time.Second); err != nil {
		return fmt.Errorf("the live stream's HLS: %w\n%s", err, srv.Logs)
	}

	var playErrs, pubErrs int
	var lastErr error
	play := func(i int) {
		var err error
		switch i % 3 {
		case 0:
			_, err = loadgen.FirstVideo(rtmp("live/keep"), 10*time.Second)
		case 1:
			err = readSome(httpURL("live/keep.flv"), 64<<10)
		case 2:
			err = readSome(httpURL("live/keep.m3u8"), 1)
		}
		if err != nil {
			playErrs++
			lastErr = err
		}
	}
	sample := func(cycle int) (row, error) {
		s, err := m.Metrics()
		if err != nil {
			return row{}, err
		}
		return row{cycle: cycle, rssMB: float64(proc.VmRSS(pid)) / (1 << 20),
			heapMB: s["go_memstats_heap_inuse_bytes"] / (1 << 20), sysMB: s["go_memstats_sys_bytes"] / (1 << 20),
			goroutines: int(s["go_goroutines"]), fds: int(s["process_open_fds"]), list: int(s.Sum("podium_streams"))}, nil
	}
	fmt.Printf("churn: %d publish/unpublish cycles (1.5 s of H.264+Speex each, transcoded, HLS) + %d short plays (RTMP, HTTP-FLV, HLS)\n", cycles, cycles)
	fmt.Printf("%7s %9s %12s %11s %11s %9s %8s\n", "cycles", "RSS MB", "Go heap MB", "Go sys MB", "goroutines", "open fds", "streams")
	var rows []row
	start := time.Now()
	for i := 0; i <= cycles; i++ {
		if i%every == 0 {
			r, err := sample(i)
			if err != nil {
				return err
			}
			rows = append(rows, r)
			fmt.Printf("%7d %9.1f %12.1f %11.1f %11d %9d %8d\n", r.cycle, r.rssMB, r.heapMB, r.sysMB, r.goroutines, r.fds, r.list)
		}
		if i == cycles || ctx.Err() != nil {
			break
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := loadgen.Publish(cctx, rtmp(fmt.Sprintf("live/churn%d", i)), tags, false, 1500*time.Millisecond); err != nil {
			pubErrs++
			lastErr = err
		}
		cancel()
		play(i)
	}
	took := time.Since(start)
	if err := proc.Sleep(ctx, 10*time.Second); err != nil { // let the last transcodes and HLS writers end
		return err
	}
	end, err := sample(cycles)
	if err != nil {
		return err
	}
	fmt.Printf("settled %7s %9.1f %12.1f %11.1f %11d %9d %8d\n", "", end.rssMB, end.heapMB, end.sysMB, end.goroutines, end.fds, end.list)
	fmt.Printf("%d cycles in %v; publish errors %d, play errors %d (last: %v); keep publisher restarts %d\n",
		cycles, took.Round(time.Second), pubErrs, playErrs, lastErr, keepPub.Restarts())

	if profile == "" {
		profile = filepath.Join(dir, "heap.pb.gz")
	}
	heap, err := m.Get("/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	if err := os.WriteFile(profile, heap, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nheap profile: %s; top in-use (go tool pprof -top -sample_index=inuse_space):\n", profile)
	top, err := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "tool", "pprof", "-top",
		"-sample_index=inuse_space", "-nodecount=15", bin, profile).CombinedOutput()
	if err != nil {
		fmt.Printf("(go tool pprof: %v)\n", err)
	}
	fmt.Println(strings.TrimSpace(string(top)))

	var failures []string
	base := rows[0]
	if end.goroutines > base.goroutines+5 {
		failures = append(failures, fmt.Sprintf("goroutines %d after, %d before", end.goroutines, base.goroutines))
	}
	if end.fds > base.fds+2 {
		failures = append(failures, fmt.Sprintf("open files %d after, %d before", end.fds, base.fds))
	}
	if end.list != base.list {
		failures = append(failures, fmt.Sprintf("%d streams listed after, %d before", end.list, base.list))
	}
	if pubErrs+playErrs > 0 {
		failures = append(failures, fmt.Sprintf("%d publish and %d play errors", pubErrs, playErrs))
	}
	return harness.Failed("churn", failures)
}

func fixtureArgs(file, url string) []string {
	return []string{"-hide_banner", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy", "-f", "flv", url}
}

// readSome GETs url and reads n bytes of it.
func readSome(url string, n int64) error {
	_, err := loadgen.HTTPRead(url, n, 10*time.Second)
	return err
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if err := readSome(url, 1); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		if err := proc.Sleep(ctx, 250*time.Millisecond); err != nil {
			return errors.Join(err, ctx.Err())
		}
	}
}
