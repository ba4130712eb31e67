package e2e

import (
	"context"
	"fmt"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/podiumlive/podium/internal/loadgen"
	"github.com/stretchr/testify/require"
)

// TestChurn200 is the CI-sized churn (bench/churn runs 1000): on the
// embedded default config (transcode into vhost transcode, HLS), 200
// publish/unpublish cycles of distinct streams and 200 short plays of a
// live stream (RTMP, HTTP-FLV, HLS in turn). Afterwards goroutines and
// open files (read from /metrics, as an operator would) are back to their
// baseline and no churned stream is left listed.
func TestChurn200(t *testing.T) {
	p := startPodium(t, fmt.Sprintf("auth: {admin_password: %s}\n", reliabilityPassword))
	admin := newAPI(t, p, reliabilityPassword)
	file := speexFixture(t)
	tags := flvTags(t, file)
	publish(t, file, p.RTMPURL("live/keep"))
	hls := fmt.Sprintf("http://127.0.0.1:%d/live/keep.m3u8", p.HTTP)
	flvURL := fmt.Sprintf("http://127.0.0.1:%d/live/keep.flv", p.HTTP)
	require.Eventually(t, func() bool { _, _, err := hlsPlaylist(hls); return err == nil },
		30*time.Second, 250*time.Millisecond, "the live stream's HLS playlist")

	cycle := func(i int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, goPublish(ctx, p.RTMPURL(fmt.Sprintf("live/churn%d", i)), tags, false, 1500*time.Millisecond), "cycle %d", i)
	}
	play := func(i int) {
		t.Helper()
		switch i % 3 {
		case 0:
			_, err := goPlay(p.RTMPURL("live/keep"), 10*time.Second)
			require.NoError(t, err, "rtmp play %d", i)
		case 1:
			require.NoError(t, shortFLVPlay(flvURL), "http-flv play %d", i)
		case 2:
			require.NoError(t, shortHLSPlay(hls), "hls play %d", i)
		}
	}
	// Warm up (first transcode, first player of each kind), then settle.
	for i := range 3 {
		cycle(-1 - i)
		play(i)
	}
	settled := func() runtimeFigures {
		var f runtimeFigures
		require.Eventually(t, func() bool {
			return len(admin.streams()) == 2 // keep, and its transcode output
		}, 20*time.Second, 250*time.Millisecond)
		time.Sleep(2 * time.Second)
		f = readRuntime(t, admin)
		return f
	}
	base := settled()
	t.Logf("baseline: %d goroutines, %d open files, RSS %.1f MB", base.Goroutines, base.FDs, base.RSSMB)

	const n = 200
	start := time.Now()
	for i := range n {
		cycle(i)
		play(i)
		if (i+1)%50 == 0 {
			f := readRuntime(t, admin)
			t.Logf("after %d cycles + %d plays: %d goroutines, %d open files, RSS %.1f MB", i+1, i+1, f.Goroutines, f.FDs, f.RSSMB)
		}
	}
	t.Logf("%d cycles + %d plays in %v", n, n, time.Since(start).Round(time.Second))

	var after runtimeFigures
	require.Eventually(t, func() bool {
		after = readRuntime(t, admin)
		return after.Goroutines <= base.Goroutines+5 && after.FDs <= base.FDs+2
	}, 30*time.Second, 500*time.Millisecond, "goroutines and open files back to the baseline")
	t.Logf("after: %d goroutines, %d open files, RSS %.1f MB", after.Goroutines, after.FDs, after.RSSMB)
	// Each cycle's transcode output ends when its input does; the last
	// ones may take a moment.
	var names []string
	require.Eventually(t, func() bool {
		names = names[:0]
		for _, s := range admin.streams() {
			names = append(names, s.Path)
		}
		return len(names) == 2
	}, 10*time.Second, 250*time.Millisecond, "only the live stream and its output are listed")
	for _, n := range names {
		require.NotContains(t, n, "churn", "an unpublished stream is still listed")
	}
	p.Alive(t)
}

// shortFLVPlay reads an HTTP-FLV play until 64 KiB of it arrived.
func shortFLVPlay(url string) error {
	b, err := loadgen.HTTPRead(url, 64<<10, 10*time.Second)
	if err == nil && !strings.HasPrefix(string(b), "FLV") {
		err = fmt.Errorf("GET %s: not FLV", url)
	}
	return err
}

// shortHLSPlay fetches the playlist and its newest segment.
func shortHLSPlay(url string) error {
	pl, _, err := hlsPlaylist(url)
	if err != nil {
		return err
	}
	segs := listed(pl)
	if len(segs) == 0 {
		return fmt.Errorf("%s lists no segment", url)
	}
	base, err := neturl.Parse(url)
	if err != nil {
		return err
	}
	ref, err := neturl.Parse(segs[len(segs)-1].URI)
	if err != nil {
		return err
	}
	_, err = httpGetWithin(base.ResolveReference(ref).String(), 10*time.Second)
	return err
}
