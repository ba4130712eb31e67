package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nginxRTMPModule is Debian's libnginx-mod-rtmp.
const nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// startNginxHLS runs nginx-rtmp on a free port with one application "live"
// that cuts HLS (1 s fragments) into the returned directory.
func startNginxHLS(t *testing.T) (addr, hlsDir string) {
	t.Helper()
	dir := t.TempDir()
	hlsDir = filepath.Join(dir, "hls")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o755))
	port := freePort(t)
	conf := fmt.Sprintf(`load_module %s;
worker_processes 1;
master_process off;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:%d;
    application live { live on; hls on; hls_path %s; hls_fragment 1s; hls_playlist_length 10s; }
} }
`, nginxRTMPModule, dir, dir, port, hlsDir)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	cmd := exec.Command("nginx", "-c", path, "-p", dir+"/", "-e", filepath.Join(dir, "logs", "error.log"), "-g", "daemon off;")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "nginx did not listen: %s", &out)
	return addr, hlsDir
}

// masterYAML is the default chain (transcode into vhost "transcode") with
// a forward of vhost "transcode" to dests.
func masterYAML(dests ...string) string {
	return fmt.Sprintf(`vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode}
  - name: transcode
    forward: {destinations: ["%s"]}
`, strings.Join(dests, `", "`))
}

// TestForwardToNginxAndPodiumSlaves: an H.264 + Speex publish on the master
// reaches nginx-rtmp and two Podium slaves as H.264 + AAC (only the
// transcoded twin leaves the box); nginx's HLS segments hold AAC packets.
// One slave is killed for 10 s: it gets the stream back within 3 s of its
// return, the other slave sees no gap and the publisher is never dropped.
func TestForwardToNginxAndPodiumSlaves(t *testing.T) {
	ngx, hlsDir := startNginxHLS(t)
	s1 := startPodium(t, "")
	s2 := startPodium(t, "")
	master := startPodium(t, masterYAML(ngx, fmt.Sprintf("127.0.0.1:%d", s1.RTMP), fmt.Sprintf("127.0.0.1:%d", s2.RTMP)))
	pub := publish(t, speexFixture(t), master.RTMPURL("live/s1"))

	for _, s := range []*podium{s1, s2} {
		res := probeUntil(t, s.RTMPURL("live/s1"), 20*time.Second, "video", "audio")
		v, _ := res.stream("video")
		a, _ := res.stream("audio")
		require.Equal(t, "h264", v)
		require.Equal(t, "aac", a, "the slave must get the transcoded twin, not the Speex original")
	}
	// The slave's logs show a forwarded publish (hop 1), once.
	require.Equal(t, 1, strings.Count(s1.Logs.String(), "forward_hops=1"), s1.Logs.String())

	// nginx-rtmp cannot cut HLS from Speex; from the forward it can.
	var seg string
	require.Eventually(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(hlsDir, "s1-*.ts"))
		if len(m) < 2 {
			return false
		}
		seg = m[0]
		return true
	}, 20*time.Second, 200*time.Millisecond, "nginx wrote no HLS segments")
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "a",
		"-show_entries", "stream=codec_name,nb_read_packets", "-of", "csv=p=0", seg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The first line: ffprobe repeats the stream under its program.
	f := strings.Split(strings.Fields(string(out))[0], ",")
	require.Len(t, f, 2, "%s", out)
	require.Equal(t, "aac", f[0])
	require.NotEqual(t, "0", f[1], "nginx's segment has no AAC packets")

	// Record slave 1 through the whole outage of slave 2.
	rec := filepath.Join(t.TempDir(), "s1.flv")
	recorder := record(t, s1.RTMPURL("live/s1"), rec)
	time.Sleep(2 * time.Second)

	s2.kill()
	time.Sleep(10 * time.Second)
	before := len(s2.Logs.String())
	back := time.Now()
	s2.restart(t)
	require.Eventually(t, func() bool {
		return strings.Contains(s2.Logs.String()[before:], "rtmp publish")
	}, 10*time.Second, 20*time.Millisecond, "slave 2 did not get the stream back:\n%s", s2.Logs.String()[before:])
	resumed := time.Since(back)
	t.Logf("slave 2 resumed %v after it came back", resumed.Round(time.Millisecond))
	require.Less(t, resumed, 3*time.Second)
	res := probeUntil(t, s2.RTMPURL("live/s1"), 20*time.Second, "video", "audio")
	a, _ := res.stream("audio")
	require.Equal(t, "aac", a)

	time.Sleep(2 * time.Second)
	_ = recorder.Process.Signal(os.Interrupt)
	_ = recorder.Wait()
	require.NoError(t, pub.Process.Signal(syscall.Signal(0)), "the publisher was dropped")
	require.Equal(t, 1, strings.Count(s1.Logs.String(), "rtmp publish"), "slave 1 saw a reconnect")
	// Slave 1's recording is continuous: no gap in video timestamps.
	pk := packets(t, rec, "v")
	require.Greater(t, len(pk), 25*12, "slave 1 recorded too little video")
	var maxGap float64
	for i := 1; i < len(pk); i++ {
		maxGap = max(maxGap, ptsf(pk[i].PTSTime)-ptsf(pk[i-1].PTSTime))
	}
	t.Logf("slave 1: %d video packets, largest timestamp step %.3fs", len(pk), maxGap)
	require.Less(t, maxGap, 0.2, "slave 1's stream has a gap")
	master.Alive(t)
}

// throttle is a TCP proxy to target that passes the client's bytes at
// rate bytes per second: a slave on a bad link that reads slowly.
func throttle(t *testing.T, target string, rate int) string {
	t.Helper()
	// A small receive buffer from the SYN on, so the slowness reaches the
	// sender instead of piling up in this side's kernel.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer up.Close()
				defer c.Close()
				buf := make([]byte, rate/10)
				tk := time.NewTicker(100 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
					}
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, up)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestForwardSlowSlave: a slave that reads at 10 KB/s loses whole GOPs at
// the master (drops counted in the log); the other slave stays real time
// and the master's memory stays bounded.
func TestForwardSlowSlave(t *testing.T) {
	fast := startPodium(t, "")
	slowSlave := startPodium(t, "")
	slow := throttle(t, fmt.Sprintf("127.0.0.1:%d", slowSlave.RTMP), 10_000)
	master := startPodium(t, "auth: {admin_password: fwdtest}\n"+masterYAML(fmt.Sprintf("127.0.0.1:%d", fast.RTMP), slow))
	// About 3 Mbit/s of video (noise does not compress): 40× what the slow
	// link carries, so the backlog outgrows the kernel's socket buffers.
	file := fixture(t, "h264-3m-speex",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=30:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "1M",
		"-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
	pub := publish(t, file, master.RTMPURL("live/s1"))
	probeUntil(t, fast.RTMPURL("live/s1"), 20*time.Second, "video", "audio")

	rec := filepath.Join(t.TempDir(), "fast.flv")
	start := time.Now()
	recorder := record(t, fast.RTMPURL("live/s1"), rec)
	rss0 := master.RSS(t)
	var rssMax int64
	for time.Since(start) < 20*time.Second {
		time.Sleep(time.Second)
		rssMax = max(rssMax, master.RSS(t))
	}
	_ = recorder.Process.Signal(os.Interrupt)
	_ = recorder.Wait()
	elapsed := time.Since(start).Seconds()

	pk := packets(t, rec, "v")
	require.NotEmpty(t, pk)
	span := ptsf(pk[len(pk)-1].PTSTime) - ptsf(pk[0].PTSTime)
	t.Logf("fast slave: %.1fs of video in %.1fs; master RSS %d → max %d MiB", span, elapsed, rss0>>20, rssMax>>20)
	require.Greater(t, span, elapsed-4, "the fast slave fell behind real time")
	require.Less(t, rssMax-rss0, int64(64<<20), "master memory grew with the slow slave's backlog")
	require.NoError(t, pub.Process.Signal(syscall.Signal(0)), "the publisher was dropped")

	logs := master.Logs.String()
	drops := 0
	for _, m := range regexp.MustCompile(`(?:discarding packets.*reader=forward.*discarded|slave is too slow.*dropped)=(\d+)`).FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		drops += n
	}
	t.Logf("master dropped %d packets for the slow slave; %d failed forward sessions", drops, strings.Count(logs, "forward failed"))
	require.Positive(t, drops, "the slow slave's drops were not counted:\n%s", logs)

	// The API shows both destinations: the slow one with its drops.
	var res struct {
		Code     int `json:"code"`
		Forwards []struct {
			Destination string `json:"destination"`
			State       string `json:"state"`
			Dropped     uint64 `json:"dropped"`
			Bytes       uint64 `json:"bytes"`
		} `json:"forwards"`
	}
	require.NoError(t, json.Unmarshal(newAPI(t, master, "fwdtest").get("/api/v1/forwards"), &res))
	require.Len(t, res.Forwards, 2)
	for _, f := range res.Forwards {
		t.Logf("api: %s %s dropped=%d bytes=%d", f.Destination, f.State, f.Dropped, f.Bytes)
		require.Equal(t, "forwarding", f.State)
		if strings.Contains(f.Destination, slow) {
			require.Positive(t, f.Dropped, "the slow slave's drops are not in the API")
		} else {
			require.Zero(t, f.Dropped, "the fast slave dropped packets")
			require.Greater(t, f.Bytes, uint64(5<<20))
		}
	}
	master.Alive(t)
}

// TestForwardReloadOnSIGHUP: adding a destination and sending SIGHUP
// starts a push to it, and the unchanged destination keeps its session.
func TestForwardReloadOnSIGHUP(t *testing.T) {
	s1 := startPodium(t, "")
	s2 := startPodium(t, "")
	d1, d2 := fmt.Sprintf("127.0.0.1:%d", s1.RTMP), fmt.Sprintf("127.0.0.1:%d", s2.RTMP)
	master := startPodium(t, masterYAML(d1))
	publish(t, speexFixture(t), master.RTMPURL("live/s1"))
	probeUntil(t, s1.RTMPURL("live/s1"), 20*time.Second, "video", "audio")

	path := filepath.Join(master.Dir, "podium.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), masterYAML(d1), masterYAML(d1, d2), 1)), 0o644))
	require.NoError(t, master.cmd.Process.Signal(syscall.SIGHUP))
	res := probeUntil(t, s2.RTMPURL("live/s1"), 20*time.Second, "video", "audio")
	a, _ := res.stream("audio")
	require.Equal(t, "aac", a)
	require.Contains(t, master.Logs.String(), "config reloaded")
	require.NotContains(t, master.Logs.String(), "after a restart", "a forward change needs no restart")
	require.Equal(t, 1, strings.Count(s1.Logs.String(), "rtmp publish"), "the unchanged destination was restarted")
	require.Equal(t, 1, strings.Count(master.Logs.String(), "destination=\"rtmp://"+d1), "one session to the unchanged destination")
}
