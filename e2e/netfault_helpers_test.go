package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// netPair is two network namespaces joined by a veth pair: the master's
// (A, address IPA) and a slave's (B, address IPB). Faults are injected in
// them with tc and nftables; everything is removed when the test ends.
type netPair struct {
	A, B       string // namespace names
	DevA, DevB string
	IPA, IPB   string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network-namespace fault tests need root (ip netns, veth, tc, nft); run as root, as CI does")
	}
	for _, tool := range []string{"ip", "tc", "nft"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s is missing (Debian: iproute2, nftables; see packaging/deps-debian.sh)", tool)
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
}

func newNetPair(t *testing.T) *netPair {
	t.Helper()
	needRoot(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, rand.IntN(100))
	n := &netPair{A: "pdm" + id, B: "pds" + id, DevA: "vm" + id, DevB: "vs" + id}
	sub := 1 + rand.IntN(250)
	n.IPA, n.IPB = fmt.Sprintf("10.213.%d.1", sub), fmt.Sprintf("10.213.%d.2", sub)
	sh(t, "ip", "netns", "add", n.A)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.A).Run() })
	sh(t, "ip", "netns", "add", n.B)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.B).Run() })
	sh(t, "ip", "link", "add", n.DevA, "netns", n.A, "type", "veth", "peer", "name", n.DevB, "netns", n.B)
	for _, x := range []struct{ ns, dev, ip string }{{n.A, n.DevA, n.IPA}, {n.B, n.DevB, n.IPB}} {
		sh(t, "ip", "-n", x.ns, "addr", "add", x.ip+"/24", "dev", x.dev)
		sh(t, "ip", "-n", x.ns, "link", "set", x.dev, "up")
		sh(t, "ip", "-n", x.ns, "link", "set", "lo", "up")
	}
	return n
}

// nft loads an nftables ruleset into namespace ns.
func nft(t *testing.T, ns, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nft in %s: %s\n%s", ns, out, rules)
}

// dropRules drops a share of every packet in and out of ns (100: all of
// them, silently: a partition, no RST).
func dropRules(percent int) string {
	rule := "drop"
	if percent < 100 {
		rule = fmt.Sprintf("numgen random mod 100 < %d drop", percent)
	}
	return fmt.Sprintf(`table inet fault {
  chain in { type filter hook input priority 0; iifname != "lo" %s; }
  chain out { type filter hook output priority 0; oifname != "lo" %s; }
}
`, rule, rule)
}

func clearFaults(t *testing.T, ns string) {
	t.Helper()
	_ = exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "fault").Run()
}

// nsDial dials addr from inside namespace ns: on a locked thread moved into
// ns (the socket stays there); the goroutine exits locked, so Go retires
// the thread instead of reusing it in the wrong namespace.
func nsDial(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// nsProxy is a 127.0.0.1 port of the test's namespace that leads to addr
// inside ns, so ffmpeg, ffprobe and the test's players reach a server
// that runs in a namespace.
func nsProxy(t *testing.T, ns, addr string) int {
	t.Helper()
	return proxy(t, func() (net.Conn, error) { return nsDial(ns, addr, 5*time.Second) }, nil)
}

// proxy listens on 127.0.0.1 and pipes each connection to dial(); shape,
// when set, carries the client-to-server direction instead of io.Copy.
func proxy(t *testing.T, dial func() (net.Conn, error), shape func(dst io.Writer, src io.Reader)) int {
	t.Helper()
	return serveConns(t, func(c net.Conn, track func(net.Conn)) {
		s, err := dial()
		if err != nil {
			c.Close()
			return
		}
		track(s)
		var pipes sync.WaitGroup
		pipes.Go(func() {
			if shape != nil {
				shape(s, c)
			} else {
				_, _ = io.Copy(s, c)
			}
			s.Close()
		})
		pipes.Go(func() { _, _ = io.Copy(c, s); c.Close() })
		pipes.Wait()
	})
}

// serveConns listens on 127.0.0.1 and runs serve on each connection in its
// own goroutine; when the test ends it closes the listener and every
// connection (the accepted ones and those serve tracks) and waits.
func serveConns(t *testing.T, serve func(c net.Conn, track func(net.Conn))) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() { serve(c, track) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// delayed carries src to dst with every chunk held back delay ± jitter
// (in order: a chunk never overtakes the one before, as on a TCP path).
// Hand-written: toxiproxy would bring a server and its HTTP API for ten
// lines of this.
func delayed(delay, jitter time.Duration) func(dst io.Writer, src io.Reader) {
	return func(dst io.Writer, src io.Reader) {
		type chunk struct {
			b   []byte
			due time.Time
		}
		ch := make(chan chunk, 4096)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			defer close(ch)
			var last time.Time
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					due := time.Now().Add(delay + time.Duration(rand.Int64N(int64(2*jitter+1))) - jitter)
					if due.Before(last) {
						due = last
					}
					last = due
					select {
					case ch <- chunk{buf[:n], due}:
					case <-ctx.Done():
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range ch {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
	}
}

// nsPodium runs podium serve inside namespace ns, listening on ip, and
// returns it with RTMP reachable from the test at the returned proxy port.
func nsPodium(t *testing.T, ns, ip string, rtmp, http int, extraYAML string) (p *podium, rtmpProxy int) {
	t.Helper()
	p = &podium{RTMP: rtmp, HTTP: http, Dir: t.TempDir(), Logs: &lockedBuffer{}}
	cfg := fmt.Sprintf("listen: {rtmp: \"%s:%d\", http: \"%s:%d\"}\ndata_dir: %s\n%s", ip, p.RTMP, ip, p.HTTP, p.Dir, extraYAML)
	require.NoError(t, os.WriteFile(filepath.Join(p.Dir, "podium.yaml"), []byte(cfg), 0o644))
	p.cmd = exec.Command("ip", "netns", "exec", ns, podiumBin, "serve", "--config", filepath.Join(p.Dir, "podium.yaml"))
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { p.Stop(t) })
	addr := fmt.Sprintf("%s:%d", ip, p.RTMP)
	require.Eventually(t, func() bool {
		c, err := nsDial(ns, addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "podium in %s did not listen on %s:\n%s", ns, addr, p.Logs)
	return p, nsProxy(t, ns, addr)
}

// nsPublisher is startPublisher with ffmpeg run inside namespace ns.
func nsPublisher(t *testing.T, ns, file, url string) *publisher {
	t.Helper()
	return runPublisher(t, exec.Command("ip", "netns", "exec", ns, "ffmpeg", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", file, "-c", "copy", "-f", "flv", url))
}
