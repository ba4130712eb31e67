package hls

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

func TestSegmentsPlayableEveryVariantAndTrackSet(t *testing.T) {
	all := readFLV(t, avFixture(t))
	cases := []struct {
		name    string
		variant string
		pkts    []media.Packet
		want    []string
	}{
		{"ts av", VariantMPEGTS, all, []string{"video:h264", "audio:aac"}},
		{"ts video only", VariantMPEGTS, only(all, media.KindVideo), []string{"video:h264"}},
		{"ts audio only", VariantMPEGTS, only(all, media.KindAudio), []string{"audio:aac"}},
		{"fmp4 av", VariantFMP4, all, []string{"video:h264", "audio:aac"}},
		{"fmp4 audio only", VariantFMP4, only(all, media.KindAudio), []string{"audio:aac"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Settings{Fragment: time.Second, Window: 10, Variant: c.variant}, Options{})
			e.publish("s", c.pkts)
			pl := e.playlist("s")
			segs := segments(pl)
			// 6 s in 1 s fragments; keyframes every 0.48 s, so each
			// segment ends on the first keyframe at or after 1 s.
			require.GreaterOrEqual(t, len(segs), 4, "segments")
			require.LessOrEqual(t, len(segs), 7)
			require.Equal(t, uint64(0), pl.SeqNo)
			total, longest := 0.0, 0.0
			for i, s := range segs {
				longest = math.Max(longest, s.Duration)
				require.False(t, s.ProgramDateTime.IsZero(), "EXT-X-PROGRAM-DATE-TIME")
				total += s.Duration
				if i < len(segs)-1 {
					require.GreaterOrEqual(t, s.Duration, 0.999, "segment %d", i)
					require.LessOrEqual(t, s.Duration, 1.5, "segment %d: within a GOP of fragment", i)
				}
			}
			require.InDelta(t, 6.0, total, 0.2)
			require.Equal(t, math.Ceil(longest-0.0005), pl.TargetDuration, "target = the longest segment, rounded up")
			// Each segment alone is decodable and carries the tracks.
			for _, s := range segs {
				path := filepath.Join(e.dir, "live", s.URI)
				if c.variant == VariantFMP4 {
					require.NotNil(t, s.Map)
					// init + segment concatenated is what a player reads.
					init, err := os.ReadFile(filepath.Join(e.dir, "live", s.Map.URI))
					require.NoError(t, err)
					seg, err := os.ReadFile(path)
					require.NoError(t, err)
					joined := filepath.Join(t.TempDir(), "joined.mp4")
					require.NoError(t, os.WriteFile(joined, append(init, seg...), 0o644))
					path = joined
				}
				require.Equal(t, c.want, probe(t, path), s.URI)
				require.Empty(t, decodeErrors(t, path), s.URI)
			}
			st := e.m.Stats()
			require.Len(t, st.Streams, 1)
			ss := st.Streams[0]
			require.Equal(t, uint64(len(segs)), ss.SegmentsWritten)
			require.Equal(t, uint64(len(segs)-1), ss.Sequence)
			require.Greater(t, ss.BytesOnDisk, int64(10000))
			require.Greater(t, ss.LastDuration, 0.0)
			_, err := json.Marshal(st)
			require.NoError(t, err)
		})
	}
}

func TestWindowAndCleanup(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 3, Variant: VariantMPEGTS}, Options{})
	all := readFLV(t, avFixture(t))
	e.publish("s", append(all, shift(all, 6*time.Second)...))
	pl := e.playlist("s")
	segs := segments(pl)
	require.Len(t, segs, 3)
	require.Equal(t, segs[0].SeqId, pl.SeqNo)
	// window + 2 kept for slow players, nothing else.
	names := fileNames(t, filepath.Join(e.dir, "live", "s"))
	ts := 0
	for _, n := range names {
		if strings.HasSuffix(n, ".ts") {
			ts++
		}
		require.False(t, strings.HasSuffix(n, ".tmp"), "temp file left: %s", n)
	}
	require.Equal(t, 5, ts, "files: %v", names)
}

func TestRepublishContinuesWithDiscontinuityAndRestartKeepsSequence(t *testing.T) {
	dir := t.TempDir()
	set := Settings{Fragment: time.Second, Window: 20, Variant: VariantMPEGTS, Path: dir}
	e := newEnv(t, set, Options{})
	all := readFLV(t, avFixture(t))
	e.publish("s", all)
	first := segments(e.playlist("s"))
	n1 := len(first)
	// Republish: timestamps restart at 0, as a new encoder's do.
	e.publish("s", all)
	pl := e.playlist("s")
	segs := segments(pl)
	require.Len(t, segs, 2*n1)
	require.Equal(t, uint64(0), pl.SeqNo)
	for i, s := range segs {
		require.Equal(t, i == n1, s.Discontinuity, "segment %d", i)
	}
	require.Equal(t, uint64(0), pl.DiscontinuitySeq)

	// Restart Podium (a new manager on the same directory): the playlist
	// is still served, and the next publish continues the sequence.
	e.m.Close()
	e.start(Options{})
	e.publish("s", all)
	pl = e.playlist("s")
	segs = segments(pl)
	require.Len(t, segs, 3*n1)
	require.True(t, segs[2*n1].Discontinuity)
	require.Equal(t, uint64(3*n1-1), segs[len(segs)-1].SeqId)

	// Slide the discontinuities out: EXT-X-DISCONTINUITY-SEQUENCE counts them.
	for range 4 {
		e.publish("s", all)
	}
	pl = e.playlist("s")
	require.Equal(t, uint64(7*n1-20), pl.SeqNo)
	discs := 0
	for _, s := range segments(pl) {
		if s.Discontinuity {
			discs++
		}
	}
	require.Equal(t, uint64(6-discs), pl.DiscontinuitySeq, "every discontinuity is either listed or counted")

	// The playlist's timestamps continue across the republish: segment
	// n1's first PTS is after segment n1-1's.
	start := func(name string) float64 {
		out, err := exec.Command("ffprobe", "-v", "error", "-of", "csv=p=0", "-show_entries", "format=start_time", name).Output()
		require.NoError(t, err)
		var f float64
		_, err = fmt.Sscan(strings.TrimSpace(string(out)), &f)
		require.NoError(t, err)
		return f
	}
	segs = segments(pl)
	for i := 1; i < len(segs); i++ {
		a := start(filepath.Join(dir, "live", segs[i-1].URI))
		b := start(filepath.Join(dir, "live", segs[i].URI))
		require.InDelta(t, a+segs[i-1].Duration, b, 0.1, "segment %d starts where %d ends", i, i-1)
	}
}

func TestCodecChangeIsADiscontinuity(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 20, Variant: VariantMPEGTS}, Options{})
	all := readFLV(t, avFixture(t))
	// Same publish; halfway the audio track changes configuration (a new
	// *Track with another AudioSpecificConfig: 44.1 kHz stereo).
	var changed []media.Packet
	var newTrack *media.Track
	for _, p := range shift(all, 6*time.Second) {
		if p.Track.Kind == media.KindAudio {
			if newTrack == nil {
				tr := *p.Track
				tr.Config = []byte{0x12, 0x10} // AAC-LC 44.1 kHz stereo
				tr.Channels = 2
				newTrack = &tr
			}
			p.Track = newTrack
		}
		changed = append(changed, p)
	}
	e.publish("s", append(all, changed...))
	segs := segments(e.playlist("s"))
	discs := 0
	for _, s := range segs {
		if s.Discontinuity {
			discs++
		}
	}
	require.Equal(t, 1, discs)
	require.GreaterOrEqual(t, len(segs), 9)
}

func TestDiskFullRecoversWithDiscontinuityAndLogsOncePerInterval(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 30, Variant: VariantMPEGTS}, Options{ErrorInterval: time.Hour})
	var mu sync.Mutex
	full := false
	e.m.writeFile = func(name string, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
		}
		return writeAtomic(name, data)
	}
	all := readFLV(t, avFixture(t))
	pub := func(off time.Duration) {
		// one long publish in three parts
		for _, p := range shift(all, off) {
			e.pub.WritePacket(p)
			time.Sleep(50 * time.Microsecond)
		}
	}
	e.openPublisher("s")
	pub(0)
	waitFor(t, func() bool { return e.m.Stats().Streams[0].SegmentsWritten >= 4 })
	mu.Lock()
	full = true
	mu.Unlock()
	pub(6 * time.Second)
	waitFor(t, func() bool { return e.m.Stats().Streams[0].WriteErrors >= 4 })
	mu.Lock()
	full = false
	mu.Unlock()
	pub(12 * time.Second)
	e.pub.Close()
	e.waitIdle("s")

	require.Equal(t, 1, countLines(e.logs.String(), "hls write failed"), "one error line per interval:\n%s", e.logs)
	require.Contains(t, e.logs.String(), "no space left on device")
	segs := segments(e.playlist("s"))
	var discAt []int
	for i, s := range segs {
		if s.Discontinuity {
			discAt = append(discAt, i)
		}
		if i > 0 {
			require.Equal(t, segs[i-1].SeqId+1, s.SeqId, "sequence without holes")
		}
	}
	require.Len(t, discAt, 1, "the gap is marked")
	require.GreaterOrEqual(t, len(segs)-discAt[0], 4, "segments after recovery")
	require.Empty(t, decodeErrors(t, filepath.Join(e.dir, "live", segs[len(segs)-1].URI)))
}

func TestDisposeRemovesFilesButNotTheSequence(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 4, Variant: VariantMPEGTS, Dispose: 300 * time.Millisecond}, Options{})
	all := readFLV(t, avFixture(t))
	e.publish("s", all)
	dir := filepath.Join(e.dir, "live")
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "s.m3u8"))
		return errors.Is(err, os.ErrNotExist)
	})
	require.Equal(t, []string{stateFile}, fileNames(t, filepath.Join(dir, "s")))
	require.Empty(t, e.m.Stats().Streams)
	e.publish("s", all)
	pl := e.playlist("s")
	require.Greater(t, pl.SeqNo, uint64(3), "the sequence does not restart after a dispose")
	// A republish within the dispose delay cancels the dispose.
	time.Sleep(200 * time.Millisecond)
	e.publish("s", all)
	time.Sleep(200 * time.Millisecond) // past the first dispose time, not the second
	require.FileExists(t, filepath.Join(dir, "s.m3u8"))
}

func TestDisposeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, Settings{Fragment: time.Second, Window: 4, Variant: VariantMPEGTS, Path: dir, Dispose: time.Hour}, Options{})
	e.publish("s", readFLV(t, avFixture(t)))
	e.m.Close()
	// Restarted with a short dispose: the leftover files of a stream that
	// never comes back go too.
	e.set.Dispose = 200 * time.Millisecond
	e.start(Options{})
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "live", "s.m3u8"))
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestOnHLSHook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		_, _ = io.WriteString(w, "0")
	}))
	defer srv.Close()
	e := newEnv(t, Settings{Fragment: time.Second, Window: 4, Variant: VariantMPEGTS, OnHLS: []string{srv.URL}}, Options{})
	e.publish("s", readFLV(t, avFixture(t)))
	segs := segments(e.playlist("s"))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 4 })
	mu.Lock()
	defer mu.Unlock()
	var first map[string]any
	for _, g := range got {
		if g["seq_no"] == float64(0) {
			first = g
		}
	}
	require.NotNil(t, first, "%v", got)
	require.Equal(t, "on_hls", first["action"])
	require.Equal(t, "v", first["vhost"])
	require.Equal(t, "live", first["app"])
	require.Equal(t, "s", first["stream"])
	require.Equal(t, "127.0.0.1", first["ip"])
	require.Equal(t, "live/s/0.ts", first["url"])
	require.Equal(t, "live/s.m3u8", first["m3u8_url"])
	require.Equal(t, filepath.Join(e.dir, "live", "s", "0.ts"), first["file"])
	require.Equal(t, filepath.Join(e.dir, "live", "s.m3u8"), first["m3u8"])
	require.InDelta(t, 1.0, first["duration"], 0.5)
	_ = segs
}

func TestHTTP(t *testing.T) {
	dir := t.TempDir()
	// A secret next to the HLS directory that no URL may reach.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.m3u8"), []byte("secret"), 0o644))
	hlsDir := filepath.Join(dir, "hls")
	e := newEnv(t, Settings{Fragment: time.Second, Window: 4, Variant: VariantMPEGTS, Path: hlsDir}, Options{})
	e.publish("s", readFLV(t, avFixture(t)))
	require.NoError(t, os.WriteFile(filepath.Join(hlsDir, "live", "..m3u8"), []byte("secret"), 0o644))
	srv := httptest.NewServer(e.m)
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.URL.Opaque = path // sent as is: no client-side cleaning
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/live/s.m3u8")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	seg := segments(parsePlaylist(t, []byte(body)))[0].URI
	resp, body = get("/live/" + seg)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Cache-Control"), "max-age=")
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, byte(0x47), body[0])
	resp, _ = get("/live/s.m3u8?vhost=v")
	require.Equal(t, 200, resp.StatusCode)

	for _, bad := range []string{
		"/../secret.m3u8", "/live/../../secret.m3u8", "/live/%2e%2e/%2e%2e/secret.m3u8",
		"/%2e%2e/secret.m3u8", "/live/%252e%252e/%252e%252e/secret.m3u8", "/%252e%252e/secret.m3u8",
		"/live/..%2f..%2fsecret.m3u8", "/live/..%252f..%252fsecret.m3u8", "/live/s%00.m3u8",
		"/live/s.m3u8%00", "/live%00/s.m3u8", "/live/s/.state.json", "/live/s/..%2f..%2f..%2fsecret.m3u8",
		"/live/..m3u8", "/live/s/0.ts/..", "/live//s.m3u8", "/live/s/x.ts", "/live/s/-1.ts",
		"//etc/passwd.m3u8", "/live/s/%2e%2e/s.m3u8", "/live/s.m3u8?vhost=nope", "/live/nope.m3u8",
		"/live/s/.0.ts.tmp", "/" + strings.Repeat("a", 200) + "/s.m3u8",
	} {
		resp, body := get(bad)
		require.Equal(t, 404, resp.StatusCode, "%s: %s", bad, body)
		require.NotContains(t, body, "secret")
	}
	resp, _ = get("/live/s.m3u8")
	require.Equal(t, 200, resp.StatusCode)
	st := e.m.Stats()
	require.GreaterOrEqual(t, st.Requests, uint64(24))
	require.GreaterOrEqual(t, st.NotFound, uint64(20))
	require.Equal(t, uint64(4), st.Streams[0].Requests)
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/live/s.m3u8", "/live/s/1.ts", "/a/b/init-0.mp4", "/../x", "/live/s/.state.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rq, ok := parsePath(p)
		if !ok {
			return
		}
		parts := strings.Split(rq.rel, "/")
		if len(parts) < 2 || len(parts) > 3 || strings.HasSuffix(rq.rel, ".json") || strings.HasSuffix(rq.rel, ".tmp") {
			t.Fatalf("%q: served as %q", p, rq.rel)
		}
		for _, part := range parts {
			if part == ".." || part == "." || part == "" || strings.ContainsAny(part, "\x00\\%/") {
				t.Fatalf("%q: bad part %q in %q", p, part, rq.rel)
			}
		}
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 10*time.Millisecond)
}
