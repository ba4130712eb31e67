package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSecretsNeverShown configures a secret in every place a config can
// hold one, then makes Podium use each of them (a publish with the key, a
// hook that allows, a hook and a forward that fail, an RTSP source that
// cannot connect, a reload): not one secret appears in `podium check`,
// the log, the API or /metrics. `check --show-secrets` prints them all,
// and the exit codes stay what they were.
func TestSecretsNeverShown(t *testing.T) {
	hooks := newHookRecorder(t)
	hookURL := strings.Replace(hooks.URL, "http://", "http://hk:h00kpw@", 1)
	dead := freePort(t)
	vhosts := func(dest string) string {
		return fmt.Sprintf(`auth: {admin_password: "adm1n-s3cret"}
sources:
  - {url: "rtsp://cam:c4m-s3cret@127.0.0.1:%d/s", publish: cams/door}
vhosts:
  - name: __defaultVhost__
    forward:
      destinations: [%q]
    hooks:
      on_publish: ["%s/allow?key=h00k-k3y&room=1"]
      on_unpublish: ["http://127.0.0.1:%d/gone?token=n0tify-t0k"]
    security: {publish_key: "pub-k3y"}
`, dead, dest, hookURL, dead)
	}
	secrets := []string{"adm1n-s3cret", "c4m-s3cret", "fwd-t0k", "fwd2-t0k", "h00kpw", "h00k-k3y", "n0tify-t0k", "pub-k3y"}
	noSecret := func(what, s string) {
		t.Helper()
		for _, sec := range secrets {
			require.NotContains(t, s, sec, "%s shows a secret", what)
		}
	}

	p := startPodium(t, vhosts(fmt.Sprintf("rtmp://127.0.0.1:%d/live/[stream]?token=fwd-t0k", dead)))
	cfgPath := filepath.Join(p.Dir, "podium.yaml")

	// podium check: redacted by default, everything with --show-secrets.
	out, errOut, code := runPodium(t, "check", "--config", cfgPath)
	require.Equal(t, 0, code, errOut)
	noSecret("podium check", out)
	require.Contains(t, out, "admin_password: <redacted, see --show-secrets>")
	require.Contains(t, out, "publish_key: <redacted, see --show-secrets>")
	require.Contains(t, out, "rtsp://xxx@127.0.0.1:")
	require.Contains(t, out, "token=xxx")
	out, _, code = runPodium(t, "check", "--config", cfgPath, "--show-secrets")
	require.Equal(t, 0, code)
	for _, sec := range []string{"adm1n-s3cret", "c4m-s3cret", "fwd-t0k", "h00kpw", "h00k-k3y", "n0tify-t0k", "pub-k3y"} {
		require.Contains(t, out, sec)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`vhosts:
  - name: __defaultVhost__
    forward: {destinations: ["ftp://u:pub-k3y@h/x?token=fwd-t0k"]}
`), 0o644))
	_, errOut, code = runPodium(t, "check", "--config", bad)
	require.Equal(t, 2, code, "a bad config still exits 2")
	require.Contains(t, errOut, "vhosts[0].forward.destinations[0]")
	noSecret("check's error", errOut)

	// Use every secret: publish with the key (the hook allows), fail the
	// forward and the source, unpublish (the notify hook fails), reload.
	pub := publish(t, speexFixture(t), p.RTMPURL("live/cam?key=pub-k3y"))
	hooks.wait(t, 10*time.Second, hookIs("on_publish", "__defaultVhost__", "cam"))
	admin := newAPI(t, p, "adm1n-s3cret")
	require.Eventually(t, func() bool { return admin.stream("__defaultVhost__/live/cam") != nil },
		10*time.Second, 100*time.Millisecond, "the publish with the key is live:\n%s", p.Logs)
	require.Eventually(t, func() bool {
		s := admin.stream("__defaultVhost__/live/cam")
		return s != nil && len(s.Forwards) == 1 && s.Forwards[0].LastError != ""
	}, 15*time.Second, 200*time.Millisecond, "the forward to a closed port fails")

	shown := map[string]string{}
	for _, path := range []string{"/api/v1/streams", "/api/v1/clients", "/api/v1/forwards", "/api/v1/sources",
		"/api/v1/summaries", "/api/v1/transcodes", "/metrics", "/"} {
		b := admin.get(path)
		shown[path] = string(b)
		noSecret(path, string(b))
	}
	require.Contains(t, shown["/api/v1/streams"], "token=xxx", "the destination is shown, masked")
	require.Contains(t, shown["/api/v1/sources"], "rtsp://xxx@127.0.0.1")

	// A reload that changes the destination's token logs the change, masked.
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: {rtmp: \"127.0.0.1:%d\", http: \"127.0.0.1:%d\"}\ndata_dir: %s\n%s",
		p.RTMP, p.HTTP, p.Dir, vhosts(fmt.Sprintf("rtmp://127.0.0.1:%d/live/[stream]?token=fwd2-t0k", dead)))), 0o644))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(p.Logs.String(), "config reloaded") },
		10*time.Second, 50*time.Millisecond)

	_ = pub.Process.Kill()
	_ = pub.Wait()
	require.Eventually(t, func() bool { return strings.Contains(p.Logs.String(), "hook failed") },
		10*time.Second, 50*time.Millisecond, "the notify hook to a closed port fails in the log:\n%s", p.Logs)
	p.Stop(t)
	logs := p.Logs.String()
	noSecret("the log", logs)
	require.Contains(t, logs, "token=xxx", "the failing URLs are logged, masked")
}
