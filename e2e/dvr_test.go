package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDVRClassToMP4: a 12 s class published once is one MP4 with H.264 +
// AAC, 12 ± 1 s of video that decodes cleanly; on_dvr names it; the API
// lists it and serves it byte for byte (with Range); anonymous callers get
// 401; a live stream carries the "recording" mark.
func TestDVRClassToMP4(t *testing.T) {
	hooks := newHookRecorder(t)
	dir := filepath.Join(t.TempDir(), "rec")
	p := startPodium(t, dvrYAML(dir, hooks.URL+"/notify"))
	admin := newAPI(t, p, "dvr-secret")
	anon := newAPI(t, p, "")

	done := make(chan struct{})
	go func() {
		defer close(done)
		publishOnce(t, classFixture(t), p.RTMPURL("live/room101"))
	}()
	// While the class runs: the stream is marked, the list shows it live.
	require.Eventually(t, func() bool {
		for _, s := range admin.streams() {
			if s.Name == "room101" {
				return strings.Contains(string(admin.get("/api/v1/streams/"+s.ID)), `"recording":true`)
			}
		}
		return false
	}, 8*time.Second, 100*time.Millisecond, "no recording mark on the live stream")
	live := admin.recordings()
	require.Len(t, live, 1)
	require.True(t, live[0].Recording)
	require.Equal(t, http.StatusConflict, statusOf(t, admin, http.MethodGet, live[0].URL), "a file being written is not served")
	<-done

	hook := hooks.wait(t, 15*time.Second, hookIs("on_dvr", "__defaultVhost__", "room101"))
	for _, k := range []string{"action", "client_id", "ip", "vhost", "app", "stream", "param", "cwd", "file"} {
		require.Contains(t, hook, k, "on_dvr body %v", hook)
	}
	require.Equal(t, "live", hook["app"])
	require.Equal(t, "127.0.0.1", hook["ip"])
	files := recordedFiles(t, dir, ".mp4")
	require.Len(t, files, 1, "one class, one file")
	require.Equal(t, files[0], hook["file"], "on_dvr names the file")
	require.Empty(t, recordedFiles(t, dir, ".tmp.mp4"))

	pr := probeFile(t, files[0])
	vc, vd := pr.stream("video")
	ac, _ := pr.stream("audio")
	require.Equal(t, "h264", vc)
	require.Equal(t, "aac", ac)
	require.InDelta(t, 12.0, vd, 1.0, "seconds of video")
	decodesCleanly(t, files[0])

	list := admin.recordings()
	require.Len(t, list, 1)
	r := list[0]
	st, err := os.Stat(files[0])
	require.NoError(t, err)
	require.Equal(t, apiRecording{
		ID: r.ID, Vhost: "__defaultVhost__", App: "live", Stream: "room101", File: files[0],
		URL: r.URL, StartMs: r.StartMs, Duration: r.Duration, Bytes: st.Size(), Recording: false,
	}, r)
	require.NotEmpty(t, r.ID)
	require.InDelta(t, 12.0, r.Duration, 1.0)
	require.InDelta(t, time.Now().Add(-14*time.Second).UnixMilli(), r.StartMs, 6000)

	want, err := os.ReadFile(files[0])
	require.NoError(t, err)
	code, got, hdr := admin.do(http.MethodGet, r.URL, nil)
	require.Equal(t, http.StatusOK, code)
	require.True(t, bytes.Equal(want, got), "download is byte-identical (%d vs %d bytes)", len(got), len(want))
	require.Equal(t, "video/mp4", hdr.Get("Content-Type"))
	require.Equal(t, "bytes", hdr.Get("Accept-Ranges"))
	code, part, hdr := admin.do(http.MethodGet, r.URL, nil, "Range", "bytes=1000-1999")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, want[1000:2000], part)
	require.Equal(t, fmt.Sprintf("bytes 1000-1999/%d", len(want)), hdr.Get("Content-Range"))

	require.Equal(t, http.StatusUnauthorized, statusOf(t, anon, http.MethodGet, "/api/v1/recordings"))
	require.Equal(t, http.StatusUnauthorized, statusOf(t, anon, http.MethodGet, r.URL))
	require.Equal(t, http.StatusUnauthorized, statusOf(t, anon, http.MethodDelete, "/api/v1/recordings/"+r.ID))

	m := admin.metrics()
	require.Equal(t, 1.0, m["podium_dvr_files_total"])
	require.Equal(t, float64(st.Size()), m["podium_dvr_bytes_total"])
	require.Equal(t, 0.0, m["podium_dvr_failures_total"])
	require.Greater(t, m[`podium_dvr_disk_free_bytes{vhost="__defaultVhost__",dir="`+dir+`"}`], 0.0)

	require.Equal(t, http.StatusOK, statusOf(t, admin, http.MethodDelete, "/api/v1/recordings/"+r.ID))
	_, err = os.Stat(files[0])
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Empty(t, admin.recordings())
	require.Equal(t, http.StatusNotFound, statusOf(t, admin, http.MethodGet, r.URL))
}

// TestDVRSegmentPlan: a 12 s class with duration 4s gives at least three
// files that each play. Its on_dvr hook answers garbage: logged, every
// file kept.
func TestDVRSegmentPlan(t *testing.T) {
	hooks := newHookRecorder(t)
	dir := filepath.Join(t.TempDir(), "rec")
	y := strings.Replace(dvrYAML(dir, hooks.URL+"/garbage", "plan: segment", "duration: 4s"),
		"[05].mp4", "[05]_[999].mp4", 1)
	p := startPodium(t, y)
	publishOnce(t, classFixture(t), p.RTMPURL("live/seg"))
	require.Eventually(t, func() bool {
		return len(recordedFiles(t, dir, ".mp4")) >= 3 && len(recordedFiles(t, dir, ".tmp.mp4")) == 0
	},
		10*time.Second, 100*time.Millisecond)
	files := recordedFiles(t, dir, ".mp4")
	require.GreaterOrEqual(t, len(files), 3, "files: %v", files)
	total := 0.0
	for _, f := range files {
		pr := probeFile(t, f)
		vc, vd := pr.stream("video")
		require.Equal(t, "h264", vc, f)
		require.Greater(t, vd, 0.5, f)
		require.LessOrEqual(t, vd, 5.1, "a segment is cut at the first keyframe after 4 s: %s", f)
		total += vd
		decodesCleanly(t, f)
	}
	require.InDelta(t, 12.0, total, 1.0, "the segments add up to the class")
	list := newAPI(t, p, "dvr-secret").recordings()
	require.Len(t, list, len(files))
	hooks.wait(t, 5*time.Second, hookIs("on_dvr", "__defaultVhost__", "seg"))
	waitLog(t, p.Logs, "hook failed", len(files), 10*time.Second)
	require.Len(t, recordedFiles(t, dir, ".mp4"), len(files), "a failed hook keeps the file")
}

// TestDVRKill9: the recorder is killed 10 s into a class; the file on
// disk plays at least its first 6 s, and the next start finishes it.
func TestDVRKill9(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	p := startPodium(t, dvrYAML(dir, ""))
	pub := publish(t, classFixture(t), p.RTMPURL("live/crash"))
	waitLog(t, p.Logs, "dvr: recording", 1, 10*time.Second)
	started := time.Now()
	time.Sleep(10*time.Second - time.Since(started))
	p.kill()
	_ = pub.Process.Kill()

	left := recordedFiles(t, dir, ".tmp.mp4")
	require.Len(t, left, 1, "the file being written at the kill")
	pr := probeFile(t, left[0])
	vc, vd := pr.stream("video")
	require.Equal(t, "h264", vc)
	require.GreaterOrEqual(t, vd, 6.0, "seconds that survive a kill -9")
	t.Logf("kill -9 at 10 s: %.2f s of video on disk", vd)
	decodesCleanly(t, left[0])

	p.restart(t)
	waitLog(t, p.Logs, "dvr: finished a recording a crash left", 1, 10*time.Second)
	files := recordedFiles(t, dir, ".mp4")
	require.Len(t, files, 1)
	require.Empty(t, recordedFiles(t, dir, ".tmp.mp4"))
	_, vd2 := probeFile(t, files[0]).stream("video")
	require.InDelta(t, vd, vd2, 0.1)
	decodesCleanly(t, files[0])
	list := newAPI(t, p, "dvr-secret").recordings()
	require.Len(t, list, 1)
	require.Equal(t, "crash", list[0].Stream)
	require.InDelta(t, vd, list[0].Duration, 0.2)
}

// TestDVRDiskFull: the recording disk (a small tmpfs) fills up mid-file:
// the file written so far is closed and plays, the log says so once, the
// stream keeps flowing to players, and recording resumes once space
// returns.
func TestDVRDiskFull(t *testing.T) {
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput()
	require.NoError(t, err, "this test needs root to mount a small tmpfs (as CI runs it): %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	filler := filepath.Join(mnt, "filler")
	require.NoError(t, os.WriteFile(filler, make([]byte, 3<<20+512<<10), 0o644))

	dir := filepath.Join(mnt, "rec")
	p := startPodium(t, dvrYAML(dir, "", "min_free: 0"))
	url := p.RTMPURL("live/full")
	publish(t, classFixture(t), url)
	waitLog(t, p.Logs, "dvr write failed", 1, 20*time.Second)
	// What was written before the disk filled is a closed, playable file.
	require.Eventually(t, func() bool { return len(recordedFiles(t, dir, ".mp4")) == 1 }, 5*time.Second, 50*time.Millisecond)
	first := recordedFiles(t, dir, ".mp4")[0]
	_, vd := probeFile(t, first).stream("video")
	require.Greater(t, vd, 1.0)
	decodesCleanly(t, first)
	// Players are unaffected while the disk stays full.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	ok, why := readPackets(ctx, url)
	cancel()
	require.True(t, ok, "play while the disk is full: %s", why)
	p.Alive(t)
	time.Sleep(3 * time.Second)
	require.Equal(t, 1, strings.Count(p.Logs.String(), "dvr write failed"), "one error line per 10 s:\n%s", p.Logs)

	// Space returns: a new file starts within the retry interval.
	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool { return strings.Count(p.Logs.String(), "dvr: recording") >= 2 },
		15*time.Second, 100*time.Millisecond, "recording did not resume:\n%s", p.Logs)
	admin := newAPI(t, p, "dvr-secret")
	require.Eventually(t, func() bool {
		for _, r := range admin.recordings() {
			if r.Recording && r.Bytes > 0 && r.Duration > 1 {
				return true
			}
		}
		return false
	}, 10*time.Second, 200*time.Millisecond)
	require.GreaterOrEqual(t, admin.metrics()["podium_dvr_failures_total"], 1.0)
}

// TestDVRSpeexRecordsFLV: a stream MP4 cannot carry (Speex) is recorded
// to FLV, and the log names the setting.
func TestDVRSpeexRecordsFLV(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	p := startPodium(t, dvrYAML(dir, ""))
	publishOnce(t, speexFixture(t), p.RTMPURL("live/old"))
	waitLog(t, p.Logs, "vhosts[0].dvr.path", 1, 5*time.Second)
	require.Eventually(t, func() bool { return len(recordedFiles(t, dir, ".flv")) == 1 }, 10*time.Second, 100*time.Millisecond)
	f := recordedFiles(t, dir, ".flv")[0]
	pr := probeFile(t, f)
	vc, vd := pr.stream("video")
	ac, _ := pr.stream("audio")
	require.Equal(t, "h264", vc)
	require.Equal(t, "speex", ac)
	require.InDelta(t, 10.0, vd, 1.0)
	require.Empty(t, recordedFiles(t, dir, ".mp4"))
}

// TestDVRRecorderYAML: configs/recorder.yaml, as shipped (its paths moved
// into a temporary directory), records a class.
func TestDVRRecorderYAML(t *testing.T) {
	b, err := os.ReadFile("../configs/recorder.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	y := strings.ReplaceAll(string(b), "/var/lib/podium", dir)
	y = strings.Replace(y, "min_free: 2GiB", "min_free: 1MiB", 1) // a CI disk may have less
	// startPodium writes listen and data_dir first: drop the file's own.
	y = strings.Replace(y, "listen:\n", "listen_shipped:\n", 1)
	y = strings.Replace(y, "data_dir:", "# data_dir:", 1)
	var kept []string
	skip := false
	for _, line := range strings.Split(y, "\n") {
		if strings.HasPrefix(line, "listen_shipped:") {
			skip = true
			continue
		}
		if skip && strings.HasPrefix(line, "  ") {
			continue
		}
		skip = false
		kept = append(kept, line)
	}
	y = strings.Join(kept, "\n")
	require.Contains(t, y, "dvr:")
	p := startPodium(t, y+"\nauth: {admin_password: dvr-secret}\n")
	pub := publish(t, classFixture(t), p.RTMPURL("live/room101"))
	waitLog(t, p.Logs, "dvr: recording", 1, 10*time.Second)
	time.Sleep(4 * time.Second)
	_ = pub.Process.Kill()
	_ = pub.Wait()
	rec := filepath.Join(dir, "dvr", "live", "room101")
	require.Eventually(t, func() bool {
		return len(recordedFiles(t, rec, ".mp4")) == 1 && len(recordedFiles(t, rec, ".tmp.mp4")) == 0
	},
		10*time.Second, 100*time.Millisecond)
	f := recordedFiles(t, rec, ".mp4")[0]
	vc, vd := probeFile(t, f).stream("video")
	require.Equal(t, "h264", vc)
	require.Greater(t, vd, 2.5)
	decodesCleanly(t, f)
}
