package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// lmsToken is what an LMS computes: EXPIRY.hex(HMAC-SHA256(secret,
// "APP/STREAM/EXPIRY")).
func lmsToken(secret, app, stream string, exp time.Time) string {
	e := fmt.Sprint(exp.Unix())
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(app + "/" + stream + "/" + e))
	return e + "." + hex.EncodeToString(m.Sum(nil))
}

// TestClusterSecretDuplicateNodeSRS: with play_secret, the allocator wants
// an LMS token and hands out URLs the serving box checks; a second box
// with the same cluster.node is refused with one clear line and still
// allocates; a stock SRS heartbeat registers a line.
func TestClusterSecretDuplicateNodeSRS(t *testing.T) {
	const secret = "lms-shared-secret-0123"
	rd := redistest.Start(t)
	aHTTP := freePort(t)
	a := startPodiumPorts(t, freePort(t), aHTTP, 0, clusterYAML(rd.URL(), "a", "Line A", aHTTP, "1s")+"  play_secret: "+secret+"\n")
	bHTTP := freePort(t)
	b := startPodiumPorts(t, freePort(t), bHTTP, 0, clusterYAML(rd.URL(), "a", "Line B", bHTTP, "1s")+"  play_secret: "+secret+"\n")
	publish(t, speexFixture(t), a.RTMPURL("live/room9"))

	tok := "&token=" + lmsToken(secret, "live", "room9", time.Now().Add(time.Hour))
	var ans playAnswer
	require.Eventually(t, func() bool {
		code, x := allocate(t, b, "live", "room9", tok)
		ans = x
		return code == http.StatusOK
	}, 30*time.Second, 300*time.Millisecond, "box b never allocated")
	require.Equal(t, "a", ans.Data.Node)
	require.Equal(t, "Line A", ans.Data.Line, "box a holds the id, box b is not announced")
	require.Contains(t, ans.Data.URL, fmt.Sprintf("http://127.0.0.1:%d/live/room9.m3u8?token=", aHTTP))

	// No token, a wrong one, one for another class: 403.
	for _, extra := range []string{"", "&token=1.abc", "&token=" + lmsToken(secret, "live", "other", time.Now().Add(time.Hour)),
		"&token=" + lmsToken(secret, "live", "room9", time.Now().Add(-time.Minute))} {
		code, x := allocate(t, b, "live", "room9", extra)
		require.Equal(t, http.StatusForbidden, code, "%q: %+v", extra, x)
	}
	// The URL plays with its token; without it box a refuses.
	res := probeUntil(t, ans.Data.URL, 20*time.Second, "video", "audio")
	v, _ := res.stream("video")
	require.Equal(t, "h264", v)
	bare, _, _ := strings.Cut(ans.Data.URL, "?")
	resp, err := http.Get(bare)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// The duplicate id: one clear line on b, however many heartbeats.
	time.Sleep(3 * time.Second)
	require.Equal(t, 1, strings.Count(b.Logs.String(), "cluster.node is already used by another box"), "%s", b.Logs)
	require.NotContains(t, a.Logs.String(), "already used")

	// A stock SRS box registers as a line.
	body := `{"device_id":"edge1","ip":"127.0.0.1","server":"vid-9","service":"x1","pid":"7","rtmp":["19350"],"http":["18080"],"api":["19850"]}`
	resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/v1/srs/register", bHTTP), "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ids, _ := clusterNodes(t, newAPI(t, a, adminPassword(t, a)))
	require.Equal(t, []string{"a", "srs-edge1"}, ids)
	seen := map[string]bool{}
	for range 20 {
		code, x := allocate(t, a, "live", "room9", tok)
		require.Equal(t, http.StatusOK, code)
		seen[x.Data.Node] = true
		if x.Data.Node == "srs-edge1" {
			require.True(t, strings.HasPrefix(x.Data.URL, "http://127.0.0.1:18080/live/room9.m3u8?token="), x.Data.URL)
		}
	}
	require.True(t, seen["srs-edge1"] && seen["a"], "%v", seen)
}
