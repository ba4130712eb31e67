package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
)

// TestDVRRecordingsPageInBrowser: the dashboard marks a live stream that
// is being recorded; the Recordings page lists the class under its stream
// and day with duration and size; its player plays the MP4 and seeks near
// the end (HTTP Range); the download link fetches the whole file; Delete
// removes it.
func TestDVRRecordingsPageInBrowser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	p := startPodium(t, dvrYAML(dir, ""))
	base := fmt.Sprintf("http://127.0.0.1:%d", p.HTTP)
	tab := browsertest.New(t).Tab()
	tab.Go(base + "/recordings")
	require.True(t, strings.HasSuffix(tab.Location(), "/login"), "anonymous: %s", tab.Location())
	tab.Type("#password", "dvr-secret")
	tab.Click("#submit")
	tab.Wait(fmt.Sprintf(`location.href === %q`, base+"/"), 15*time.Second)

	pub := publish(t, classFixture(t), p.RTMPURL("live/room7"))
	tab.Wait(`[...document.querySelectorAll('#streams td.name.recording')].some(td => td.textContent.includes('live/room7'))`, 15*time.Second)
	time.Sleep(6 * time.Second)
	_ = pub.Process.Kill()
	_ = pub.Wait()
	require.Eventually(t, func() bool {
		return len(recordedFiles(t, dir, ".mp4")) == 1 && len(recordedFiles(t, dir, ".tmp.mp4")) == 0
	},
		10*time.Second, 100*time.Millisecond)
	file := recordedFiles(t, dir, ".mp4")[0]
	_, vd := probeFile(t, file).stream("video")

	tab.Click(`.nav a[href="/recordings"]`)
	tab.Wait(`document.querySelector('.rec-group[data-stream="live/room7"] tr[data-id] .play-btn') !== null`, 15*time.Second)
	group := tab.Text(`.rec-group[data-stream="live/room7"]`)
	require.Contains(t, group, time.Now().Format("2006-01-02"), "grouped by day")
	require.Contains(t, group, filepath.Base(file))
	require.Contains(t, group, "KiB", "size shown")
	require.Regexp(t, `0:0[5-7]`, group, "duration shown")

	tab.Click(`.rec-group[data-stream="live/room7"] .play-btn`)
	played := browsertest.WaitJS[float64](tab, `(() => { const v = document.getElementById('rec-player'); return v && v.currentTime > 1 && v.duration; })()`, 30*time.Second)
	require.InDelta(t, vd, played, 0.5, "the player sees the whole duration at once")
	// Seek near the end: the browser fetches the tail with a Range request.
	tab.Do(`(() => { const v = document.getElementById('rec-player'); v.currentTime = v.duration - 1.5; })()`)
	tab.Wait(`(() => { const v = document.getElementById('rec-player'); return v.currentTime > v.duration - 1.4 && v.readyState >= 2; })()`, 20*time.Second)

	require.NoError(t, os.MkdirAll(artifactsDir, 0o755))
	shot, err := filepath.Abs(filepath.Join(artifactsDir, "recordings.png"))
	require.NoError(t, err)
	tab.Screenshot(shot)
	t.Logf("screenshot: %s", shot)

	href := browsertest.Eval[string](tab, `document.querySelector('.rec-group[data-stream="live/room7"] a.download-link').href`)
	require.True(t, strings.HasPrefix(href, base+"/api/v1/recordings/"), href)
	n := browsertest.Eval[float64](tab, fmt.Sprintf(`fetch(%q).then(r => r.arrayBuffer()).then(b => b.byteLength)`, href))
	require.Equal(t, float64(len(mustRead(t, file))), n, "download is the whole file")

	tab.Do(`window.confirm = () => true`)
	tab.Click(`.rec-group[data-stream="live/room7"] .delete-btn`)
	tab.Wait(`document.querySelector('.rec-group[data-stream="live/room7"]') === null`, 15*time.Second)
	require.Empty(t, recordedFiles(t, dir, ".mp4"))
	require.Empty(t, tab.Errors())
}
