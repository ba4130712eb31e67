package e2e

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// plainSlave is a slave that only receives and plays (no transcode, no
// HLS): the cheapest real peer for the reliability tests.
const plainSlave = "vhosts: [{name: __defaultVhost__}]\n"

// passthroughMaster forwards __defaultVhost__ as published.
func passthroughMaster(dests ...string) string {
	return fmt.Sprintf("auth: {admin_password: %s}\nvhosts:\n  - name: __defaultVhost__\n    forward: {destinations: [\"%s\"]}\n",
		reliabilityPassword, strings.Join(dests, `", "`))
}

// blackHole accepts TCP connections and never reads from them: a "slave"
// whose process is wedged (or a firewall that answers the SYN and no
// more).
func blackHole(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", serveConns(t, func(net.Conn, func(net.Conn)) {}))
}

// TestHungSlave: a master forwards to slave 1, slave 2 and a black hole
// that accepts and never reads. Slave 2 is stopped with SIGSTOP for 15 s.
// Slave 1 stays real time throughout (no video gap over 1 s, drift under
// 1 s), the master's memory stays bounded, the publisher is never
// dropped, and slave 2 gets a fresh publish from the master within 3 s of
// SIGCONT.
func TestHungSlave(t *testing.T) {
	s1 := startPodium(t, plainSlave)
	s2 := startPodium(t, plainSlave)
	hole := blackHole(t)
	master := startPodium(t, passthroughMaster(
		fmt.Sprintf("127.0.0.1:%d", s1.RTMP), fmt.Sprintf("127.0.0.1:%d", s2.RTMP), hole))
	pub := publish(t, speexFixture(t), master.RTMPURL("live/s"))
	probeUntil(t, s1.RTMPURL("live/s"), 20*time.Second, "video", "audio")
	probeUntil(t, s2.RTMPURL("live/s"), 20*time.Second, "video", "audio")

	w := watch(t, s1.RTMPURL("live/s"))
	time.Sleep(3 * time.Second) // past the GOP-cache burst
	w.reset()
	baseRSS := master.RSS(t)

	require.NoError(t, s2.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = s2.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	var maxRSS int64
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		maxRSS = max(maxRSS, master.RSS(t))
	}
	publishes := strings.Count(s2.Logs.String(), "rtmp publish")
	require.NoError(t, s2.cmd.Process.Signal(syscall.SIGCONT))
	stopped = false
	cont := time.Now()
	require.Eventually(t, func() bool {
		return strings.Count(s2.Logs.String(), "rtmp publish") > publishes
	}, 10*time.Second, 20*time.Millisecond, "slave 2 got no fresh publish after SIGCONT:\n%s", s2.Logs)
	back := time.Since(cont)
	res := probeUntil(t, s2.RTMPURL("live/s"), 10*time.Second, "video", "audio")
	_, hasVideo := res.stream("video")
	require.True(t, hasVideo)

	st := w.stats()
	t.Logf("slave 2 back %v after SIGCONT; slave 1: %d video messages, largest gap %v, drift %v; master RSS %.1f MB before, %.1f MB max during the stop",
		back.Round(time.Millisecond), st.Videos, st.MaxGap.Round(time.Millisecond), st.MaxDrift.Round(time.Millisecond),
		float64(baseRSS)/(1<<20), float64(maxRSS)/(1<<20))
	require.Less(t, back, 3*time.Second, "fresh media within 3 s of SIGCONT")
	require.False(t, st.Ended, "slave 1's player was cut: %v", st.Err)
	require.Greater(t, st.Videos, 15*20, "slave 1 kept receiving (25 fps)")
	require.Less(t, st.MaxGap, time.Second, "slave 1 stays real time")
	require.Less(t, st.MaxDrift, time.Second, "slave 1 stays real time")
	require.Less(t, maxRSS-baseRSS, int64(64<<20), "the master's memory stays bounded")
	require.Equal(t, 1, strings.Count(s1.Logs.String(), "rtmp publish"), "slave 1's forward was never restarted")
	require.Nil(t, pub.ProcessState, "the publisher was dropped")
	master.Alive(t)
}
