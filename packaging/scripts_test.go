package packaging

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// debVersion is what Debian accepts as an upstream version without a
// revision: a digit first, no hyphen.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// run runs name in dir with env added; it returns trimmed stdout and fails
// the test on a non-zero exit.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, ee.Stderr)
	}
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func dpkgLess(t *testing.T, a, b string) {
	t.Helper()
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	require.NoError(t, err, "dpkg: %s should sort before %s", a, b)
}

func TestVersionScript(t *testing.T) {
	// The repository's own version is a Debian version.
	v := run(t, repoRoot, nil, "bash", "packaging/version.sh")
	require.Regexp(t, debVersion, v)

	// Every case, in a scratch repository holding a copy of the script.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "packaging"), 0o755))
	script, err := os.ReadFile("version.sh")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "packaging", "version.sh"), script, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "VERSION"), []byte("0.1.0\n"), 0o644))
	env := []string{
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(dir),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	}
	version := func() string {
		v := run(t, dir, env, "bash", "packaging/version.sh")
		require.Regexp(t, debVersion, v)
		return v
	}
	git := func(args ...string) string { return run(t, dir, env, "git", args...) }

	require.Equal(t, "0.1.0", version(), "no git: the VERSION file")

	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "one")
	sha := git("rev-parse", "--short", "HEAD")
	snapshot := version()
	require.Equal(t, "0.1.0~git."+sha, snapshot, "no tag yet")
	dpkgLess(t, snapshot, "0.1.0")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "VERSION"), []byte("0.1.1\n"), 0o644))
	require.Equal(t, "0.1.1~git."+sha+".dirty", version(), "uncommitted change")
	git("commit", "-qam", "two")

	git("tag", "v0.2.0")
	require.Equal(t, "0.2.0", version(), "on a release tag")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644))
	git("add", "x")
	git("commit", "-qm", "three")
	after := version()
	require.Equal(t, "0.2.0+1.g"+git("rev-parse", "--short", "HEAD"), after)
	dpkgLess(t, "0.2.0", after)

	git("tag", "v0.3.0-rc1")
	rc := version()
	require.Equal(t, "0.3.0~rc1", rc)
	dpkgLess(t, after, rc)
	dpkgLess(t, rc, "0.3.0")
}

func TestHealthcheckScript(t *testing.T) {
	script, err := filepath.Abs("healthcheck.sh")
	require.NoError(t, err)
	check := func(env ...string) (int, string) {
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}

	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	code, out := check("PODIUM_LISTEN_HTTP=127.0.0.1:" + port)
	require.Equal(t, 0, code, out)
	code, out = check("PODIUM_LISTEN_HTTP=:"+port, "PODIUM_HEALTH_ADDR=")
	require.Equal(t, 0, code, "an empty host is this machine: %s", out)
	code, out = check("PODIUM_HEALTH_ADDR=0.0.0.0:"+port, "PODIUM_LISTEN_HTTP=:1")
	require.Equal(t, 0, code, "PODIUM_HEALTH_ADDR wins: %s", out)

	status.Store(http.StatusServiceUnavailable)
	code, out = check("PODIUM_LISTEN_HTTP=127.0.0.1:" + port)
	require.Equal(t, 1, code)
	require.Contains(t, out, "503")

	srv.Close()
	code, out = check("PODIUM_LISTEN_HTTP=127.0.0.1:" + port)
	require.Equal(t, 1, code)
	require.Contains(t, out, "nothing listens")
}
