package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
)

// TestWatchPageSwitchLine: Chromium opens the student page on the master
// (which serves no HLS itself); it plays from the slave the allocator
// chose, shows its line and a "Switch line" button; pressing it moves the
// media requests to another slave and playback continues.
func TestWatchPageSwitchLine(t *testing.T) {
	c := startCluster(t, 3, "1s", "room7")
	c.waitAllReady(t, "room7")
	ports := map[string]string{}
	for i, s := range c.slaves {
		ports[fmt.Sprintf("s%d", i+1)] = fmt.Sprintf("127.0.0.1:%d", s.HTTP)
	}

	browser := browsertest.New(t)
	// A phone in Chinese: 更换线路, the page fits the screen, it plays.
	zh := browser.Tab()
	ua := browsertest.Eval[string](zh, `navigator.userAgent`)
	_, err := chromedp.Call(zh.Ctx(), emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "zh-CN"})
	require.NoError(t, err)
	_, err = chromedp.Run(zh.Ctx(), chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	require.NoError(t, err)
	zh.Go(fmt.Sprintf("http://127.0.0.1:%d/watch/live/room7", c.master.HTTP))
	require.Equal(t, "zh-CN", browsertest.Eval[string](zh, `navigator.language`))
	require.Equal(t, "更换线路", zh.Text("#switch"))
	browsertest.WaitJS[bool](zh, `document.getElementById('video').currentTime > 1`, 40*time.Second)
	fit := browsertest.Eval[map[string]float64](zh, `(() => {
		const b = document.getElementById('switch').getBoundingClientRect(), v = document.getElementById('video').getBoundingClientRect();
		return {vw: innerWidth, scroll: document.documentElement.scrollWidth, bw: b.width, bh: b.height, br: b.right, vwidth: v.width};
	})()`)
	require.Equal(t, fit["vw"], fit["scroll"], "no sideways scrolling: %v", fit)
	require.GreaterOrEqual(t, fit["bh"], 44.0, "a thumb-sized button: %v", fit)
	require.LessOrEqual(t, fit["br"], fit["vw"], "%v", fit)
	require.GreaterOrEqual(t, fit["vwidth"], fit["vw"]*0.95, "the video spans the screen: %v", fit)
	require.Empty(t, zh.Errors())

	tab := browser.Tab()
	tab.Go(fmt.Sprintf("http://127.0.0.1:%d/watch/live/room7", c.master.HTTP))
	require.Equal(t, "Switch line", tab.Text("#switch"))
	// Plays: the video moves past 2 s.
	browsertest.WaitJS[float64](tab, `(() => { const v = document.getElementById('video'); return v.currentTime > 2 && v.currentTime; })()`, 40*time.Second)
	first := browsertest.Eval[string](tab, `window.__watch.node`)
	require.Contains(t, ports, first)
	require.Contains(t, tab.Text("#line"), browsertest.Eval[string](tab, `window.__watch.line`))
	require.Equal(t, []string{ports[first]}, mediaHosts(t, tab, 0), "media only from the allocated slave")

	// Press "Switch line".
	mark := browsertest.Eval[float64](tab, `performance.now()`)
	tab.Click("#switch")
	second := browsertest.WaitJS[string](tab, fmt.Sprintf(`window.__watch.switches === 1 && window.__watch.node !== %q && window.__watch.node`, first), 10*time.Second)
	require.Contains(t, ports, second)
	before := browsertest.Eval[float64](tab, `document.getElementById('video').currentTime`)
	// Playback continues: 3 more seconds of video from the new line.
	browsertest.WaitJS[bool](tab, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 3`, before), 40*time.Second)
	settled := browsertest.Eval[float64](tab, `performance.now()`)
	time.Sleep(2 * time.Second)
	require.Equal(t, []string{ports[second]}, mediaHosts(t, tab, settled), "after the switch, media only from the new slave")
	require.Contains(t, mediaHosts(t, tab, mark), ports[second])
	require.Empty(t, tab.Errors())

	// proto=flv: the page plays HTTP-FLV (mpegts.js) from a slave.
	flvTab := browser.Tab()
	flvTab.Go(fmt.Sprintf("http://127.0.0.1:%d/watch/live/room7?proto=flv", c.master.HTTP))
	browsertest.WaitJS[bool](flvTab, `document.getElementById('video').currentTime > 2`, 40*time.Second)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/live/room7\.flv$`, browsertest.Eval[string](flvTab, `window.__watch.url`))
	require.Empty(t, flvTab.Errors())
	flvTab.Do(`window.close()`)

	// The slave it plays from hangs (SIGSTOP: connections open, nothing
	// answers): after 8 s without progress the page switches by itself.
	hung := c.slaves[second[1]-'1']
	require.NoError(t, hung.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	t.Cleanup(func() { _ = hung.cmd.Process.Signal(syscall.SIGCONT) })
	third := browsertest.WaitJS[string](tab, fmt.Sprintf(`window.__watch.stalls === 1 && window.__watch.node !== %q && window.__watch.node`, second), 40*time.Second)
	t.Logf("switched by itself from %s to %s %v after the slave hung", second, third, time.Since(stopped).Round(time.Second))
	require.GreaterOrEqual(t, time.Since(stopped), 8*time.Second, "not before 8 s without progress")
	before = browsertest.Eval[float64](tab, `document.getElementById('video').currentTime`)
	browsertest.WaitJS[bool](tab, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 2`, before), 40*time.Second)
	require.NoError(t, hung.cmd.Process.Signal(syscall.SIGCONT))

	// The dashboard's Cluster page shows the four boxes and the stream.
	base := fmt.Sprintf("http://127.0.0.1:%d", c.master.HTTP)
	tab.Go(base + "/cluster")
	tab.Type("#password", adminPassword(t, c.master))
	tab.Click("#submit")
	tab.Wait(fmt.Sprintf(`location.href === %q`, base+"/"), 15*time.Second)
	tab.Go(base + "/cluster")
	tab.Wait(`document.querySelectorAll('#nodes tbody tr').length === 4`, 15*time.Second)
	nodes := tab.Text("#nodes tbody")
	for _, want := range []string{"master (this box)", "s1", "s2", "s3", "Line 3"} {
		require.Contains(t, nodes, want)
	}
	tab.Wait(`/transcode\/live\/room7/.test(document.querySelector('#cstreams tbody').textContent)`, 15*time.Second)
	require.Contains(t, tab.Text("#cstreams tbody"), "s1 ✓")
	require.Contains(t, tab.Text("#c-state"), "registry up")
	require.Empty(t, tab.Errors())
}

// mediaHosts lists the hosts of the HLS requests the page made after
// since (performance.now() ms), in first-seen order.
func mediaHosts(t *testing.T, tab *browsertest.Tab, since float64) []string {
	t.Helper()
	names := browsertest.Eval[[]string](tab, fmt.Sprintf(`performance.getEntriesByType('resource')
		.filter(e => e.startTime >= %f && /\.(m3u8|ts)(\?|$)/.test(e.name)).map(e => e.name)`, since))
	var hosts []string
	for _, n := range names {
		u, err := url.Parse(n)
		require.NoError(t, err)
		if !slices.Contains(hosts, u.Host) {
			hosts = append(hosts, u.Host)
		}
	}
	return hosts
}
