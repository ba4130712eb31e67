package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podiumlive/podium/internal/loadgen"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/httpflv"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"
)

var silenceLal = sync.OnceFunc(loadgen.Silence)

// flvTags reads an FLV file's tags (once per file).
var flvCache sync.Map

func flvTags(t testing.TB, file string) []httpflv.Tag {
	t.Helper()
	if v, ok := flvCache.Load(file); ok {
		return v.([]httpflv.Tag)
	}
	tags, err := loadgen.ReadFLV(file)
	require.NoError(t, err)
	flvCache.Store(file, tags)
	return tags
}

func goPublish(ctx context.Context, url string, tags []httpflv.Tag, paced bool, media time.Duration) error {
	silenceLal()
	return loadgen.Publish(ctx, url, tags, paced, media)
}

func goPlay(url string, timeout time.Duration) (time.Duration, error) {
	silenceLal()
	return loadgen.FirstVideo(url, timeout)
}

// rawPublishRefused publishes app/stream over a raw RTMP connection and
// waits up to wait for the verdict: refused is true when the server
// answers an error status or closes the connection, false when the
// connection is still open at the end of wait (lal answers
// NetStream.Publish.Start before Podium's admission runs, so Start alone
// says nothing). took is from the publish command to the refusal.
func rawPublishRefused(addr, app, name string, wait time.Duration) (refused bool, took time.Duration, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, 0, err
	}
	defer c.Close()
	r := &rawClient{t: nil, c: c}
	if err := r.tryHandshake(); err != nil {
		return false, 0, err
	}
	cmds := [][]byte{
		amf("connect", 1.0, lalrtmp.ObjectPairArray{{Key: "app", Value: app}, {Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app}}),
		amf("createStream", 2.0, nil),
	}
	for _, b := range cmds {
		if err := r.command(b); err != nil {
			return false, 0, err
		}
	}
	start := time.Now()
	if err := r.command(amf("publish", 3.0, nil, name, "live")); err != nil {
		return false, 0, err
	}
	_ = c.SetReadDeadline(start.Add(wait))
	var seen bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, rerr := c.Read(buf)
		seen.Write(buf[:n])
		if s := seen.String(); strings.Contains(s, "Rejected") || strings.Contains(s, "BadName") {
			return true, time.Since(start), nil
		}
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				return false, time.Since(start), nil // still publishing
			}
			return true, time.Since(start), nil // closed: refused
		}
	}
}

// tryHandshake is handshake without a testing.T (for goroutines).
func (r *rawClient) tryHandshake() error {
	c01 := make([]byte, 1537)
	c01[0] = 3
	if _, err := r.c.Write(c01); err != nil {
		return err
	}
	s012 := make([]byte, 1+1536*2)
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(r.c, s012); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	_, err := r.c.Write(s012[1 : 1+1536])
	return err
}

// runtimeFigures reads go_goroutines, process_open_fds and
// process_resident_memory_bytes from /metrics: what an operator sees.
type runtimeFigures struct {
	Goroutines, FDs int
	RSSMB           float64
}

func readRuntime(t *testing.T, a *api) runtimeFigures {
	t.Helper()
	m := a.metrics()
	return runtimeFigures{Goroutines: int(m["go_goroutines"]), FDs: int(m["process_open_fds"]),
		RSSMB: m["process_resident_memory_bytes"] / (1 << 20)}
}

// httpGetWithin GETs url and reports how long it took (an error when it
// took longer than d or did not answer 200).
func httpGetWithin(url string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	cl := http.Client{Timeout: d}
	res, err := cl.Get(url)
	if err != nil {
		return time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return time.Since(start), fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return time.Since(start), nil
}

// watcher plays a stream for as long as the test runs and records how its
// video arrives: the largest gap between two video messages and the
// largest drift of arrival behind the media clock.
type watcher struct {
	ps *lalrtmp.PullSession

	mu        sync.Mutex
	videos    int
	first     time.Time
	firstTS   uint32
	last      time.Time
	maxGap    time.Duration
	maxGapAt  time.Time
	maxDrift  time.Duration
	lastTS    uint32
	ended     error
	endedDone bool
}

func watch(t *testing.T, url string) *watcher {
	t.Helper()
	silenceLal()
	w := &watcher{}
	w.ps = lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
		o.PullTimeoutMs = 10000
	}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		if msg.Header.MsgTypeId != base.RtmpTypeIdVideo {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.videos++
		w.lastTS = msg.Header.TimestampAbs
		if w.videos == 1 {
			w.first, w.firstTS, w.last = now, msg.Header.TimestampAbs, now
			return
		}
		if gap := now.Sub(w.last); gap > w.maxGap {
			w.maxGap, w.maxGapAt = gap, now
		}
		w.last = now
		media := time.Duration(msg.Header.TimestampAbs-w.firstTS) * time.Millisecond
		w.maxDrift = max(w.maxDrift, now.Sub(w.first)-media)
	})
	require.NoError(t, w.ps.Pull(url), "play %s", url)
	go func() {
		err := <-w.ps.WaitChan()
		w.mu.Lock()
		w.ended, w.endedDone = err, true
		w.mu.Unlock()
	}()
	t.Cleanup(func() { _ = w.ps.Dispose() })
	return w
}

// reset starts the gap and drift figures afresh (after the GOP-cache
// burst a new player gets).
func (w *watcher) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxGap, w.maxDrift = 0, 0
	w.videos, w.first, w.last = 0, time.Time{}, time.Time{}
}

type watchStats struct {
	Videos           int
	MaxGap, MaxDrift time.Duration
	MaxGapAt         time.Time // when the largest gap ended
	Ended            bool
	Err              error
	SinceLast        time.Duration
	LastTS           uint32 // the newest video timestamp (ms)
}

func (w *watcher) stats() watchStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchStats{Videos: w.videos, MaxGap: w.maxGap, MaxGapAt: w.maxGapAt, MaxDrift: w.maxDrift, Ended: w.endedDone, Err: w.ended,
		SinceLast: time.Since(w.last), LastTS: w.lastTS}
}

// newestVideoTS plays url for d and returns the newest video timestamp
// (ms) it got: how fresh the media a new player gets is.
func newestVideoTS(url string, d time.Duration) (uint32, bool) {
	silenceLal()
	var mu sync.Mutex
	var ts uint32
	var got bool
	ps := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
		o.PullTimeoutMs = int(d / time.Millisecond)
	}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		if msg.Header.MsgTypeId == base.RtmpTypeIdVideo {
			mu.Lock()
			ts, got = max(ts, msg.Header.TimestampAbs), true
			mu.Unlock()
		}
	})
	defer ps.Dispose()
	if err := ps.Pull(url); err != nil {
		return 0, false
	}
	select {
	case <-ps.WaitChan():
	case <-time.After(d):
	}
	mu.Lock()
	defer mu.Unlock()
	return ts, got
}
