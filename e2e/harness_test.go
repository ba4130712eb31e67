// Package e2e drives the real podium binary with real peers: the ffmpeg and
// ffprobe CLIs publish and check streams. Every process a test starts is
// stopped by the test; every port is a free one on 127.0.0.1.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/syncbuf"
)

// podiumBin is built once by TestMain (with -race: the e2e run doubles as
// a race check of the whole product).
var podiumBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "podium-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	podiumBin = filepath.Join(dir, "podium")
	// The go that runs this test builds the binary (CI's PATH may lack it).
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-race", "-o", podiumBin, "../cmd/podium")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build podium:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output for assertions.
type lockedBuffer = syncbuf.Buffer

// podium is a running podium serve.
type podium struct {
	RTMP int
	HTTP int
	RTSP int // 0: no RTSP server
	Dir  string
	cmd  *exec.Cmd
	Logs *lockedBuffer
}

// RTMPURL is rtmp://127.0.0.1:PORT/ + path.
func (p *podium) RTMPURL(path string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", p.RTMP, path)
}

// startPodium runs podium serve on free ports with the given vhosts
// section (YAML, may be empty for the defaults) and extra top-level YAML.
func startPodium(t testing.TB, extraYAML string) *podium {
	t.Helper()
	return startPodiumPorts(t, freePort(t), freePort(t), 0, extraYAML)
}

// startPodiumPorts is startPodium on given ports (rtsp 0: no RTSP server):
// a slave that a forward already points at, a server restarted in place.
func startPodiumPorts(t testing.TB, rtmp, http, rtsp int, extraYAML string) *podium {
	t.Helper()
	p := &podium{RTMP: rtmp, HTTP: http, RTSP: rtsp, Dir: t.TempDir(), Logs: &lockedBuffer{}}
	listen := fmt.Sprintf("listen: {rtmp: \"127.0.0.1:%d\", http: \"127.0.0.1:%d\"", rtmp, http)
	if rtsp > 0 {
		listen += fmt.Sprintf(", rtsp: \"127.0.0.1:%d\"", rtsp)
	}
	cfg := fmt.Sprintf("%s}\ndata_dir: %s\n%s", listen, p.Dir, extraYAML)
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "podium.yaml"), []byte(cfg), 0o644))
	p.start(t)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// start runs podium serve on p's config and returns when it listens (on
// its RTSP port when it has one: that one binds last).
func (p *podium) start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(podiumBin, "serve", "--config", filepath.Join(p.Dir, "podium.yaml"))
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	require.NoError(t, p.cmd.Start())
	port := p.RTMP
	if p.RTSP > 0 {
		port = p.RTSP
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("podium did not listen on %d: %v\n%s", port, err, p.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops podium with SIGKILL (a crash, no goodbye to anyone).
func (p *podium) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// restart runs a stopped podium again on its config, ports and data
// directory.
func (p *podium) restart(t testing.TB) {
	t.Helper()
	p.start(t)
}

// Stop sends SIGTERM, waits, and fails the test if podium crashed or
// did not stop in time. Safe to call twice.
func (p *podium) Stop(t testing.TB) {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("podium exited with %v\n%s", err, p.Logs)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Errorf("podium did not stop within 10s of SIGTERM\n%s", p.Logs)
	}
}

// Alive fails the test if podium has exited.
func (p *podium) Alive(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.Signal(0)), "podium is gone:\n%s", p.Logs)
}

// RSS is podium's resident memory in bytes.
func (p *podium) RSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// fixture makes (once per test binary run) a short FLV file with the given
// ffmpeg encoding arguments, so publishers can send it with -c copy and cost
// no encoding CPU.
var fixtures sync.Map

func fixture(t testing.TB, name string, args ...string) string {
	t.Helper()
	if p, ok := fixtures.Load(name); ok {
		return p.(string)
	}
	dir := filepath.Join(os.TempDir(), "podium-e2e-fixtures")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".flv")
	// Written aside, then renamed over: another test binary may be
	// publishing the file this one replaces (an ffmpeg reading a file
	// rewritten in place ends early).
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	full := append([]string{"-v", "error", "-y"}, args...)
	full = append(full, "-f", "flv", tmp)
	out, err := exec.Command("ffmpeg", full...).CombinedOutput()
	require.NoError(t, err, "make fixture %s: %s", name, out)
	require.NoError(t, os.Rename(tmp, path))
	fixtures.Store(name, path)
	return path
}

// speexFixture is H.264 320x240 25 fps (GOP 1 s) + Speex 16 kHz mono, 10 s.
func speexFixture(t testing.TB) string {
	return fixture(t, "h264-speex",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
}

// publish loops file to url in real time over RTMP until the test ends
// (or stop is called). It returns the process so a test can check it is
// still alive.
func publish(t testing.TB, file, url string, extra ...string) *exec.Cmd {
	t.Helper()
	return publishFormat(t, file, "flv", url, extra...)
}

// publishFormat is publish with ffmpeg's output format (flv, rtsp).
func publishFormat(t testing.TB, file, format, url string, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"-v", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy"}
	args = append(args, extra...)
	args = append(args, "-f", format, url)
	cmd := exec.Command("ffmpeg", args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// probeResult is the part of ffprobe's JSON the tests read.
type probeResult struct {
	Streams []struct {
		CodecType     string `json:"codec_type"`
		CodecName     string `json:"codec_name"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		SampleRate    string `json:"sample_rate"`
		Channels      int    `json:"channels"`
		NbReadPackets string `json:"nb_read_packets"`
	} `json:"streams"`
}

func (p probeResult) stream(kind string) (codec string, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			return s.CodecName, true
		}
	}
	return "", false
}

// ffprobe runs ffprobe -of json -show_streams on url with extra arguments.
func ffprobe(ctx context.Context, url string, extra ...string) (probeResult, error) {
	args := []string{"-v", "error", "-of", "json", "-show_streams", "-rw_timeout", "15000000"}
	args = append(args, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res probeResult
	if err != nil {
		return res, fmt.Errorf("ffprobe %s: %w: %s", url, err, stderr.String())
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("ffprobe %s: %w", url, err)
	}
	return res, nil
}

// probeUntil retries ffprobe until it reports both wanted stream kinds (or
// the deadline passes): a publisher needs a moment to connect.
func probeUntil(t testing.TB, url string, timeout time.Duration, kinds ...string) probeResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := ffprobe(ctx, url)
		cancel()
		if err == nil {
			all := true
			for _, k := range kinds {
				if _, ok := res.stream(k); !ok {
					all = false
				}
			}
			if all {
				return res
			}
			lastErr = fmt.Errorf("streams %+v", res.Streams)
		} else {
			lastErr = err
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("probe %s: %v", url, lastErr)
	return probeResult{}
}

// syscallZero checks a process is alive without signalling it.
var syscallZero = syscall.Signal(0)
