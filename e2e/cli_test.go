package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func runPodium(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(podiumBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run podium: %v", err)
	}
	return o.String(), e.String(), code
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	cases := []struct {
		name, yaml string
		code       int
		want       string // in stdout (code 0) or stderr
	}{
		{"valid", "listen: {rtmp: \":1936\"}\nvhosts: [{name: __defaultVhost__}]\n", 0, "rtmp: :1936"},
		{"unknown top-level key", "listne: {rtmp: \":1936\"}\n", 2, "listne"},
		{"unknown vhost key", "vhosts:\n  - name: __defaultVhost__\n  - name: x\n    bogus: 1\n", 2, "vhosts[1].bogus"},
		{"bad address", "listen: {rtmp: \"nope\"}\n", 2, "listen.rtmp"},
		{"yaml syntax", "listen: [\n", 2, "line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runPodium(t, "check", "--config", write(c.name+".yaml", c.yaml))
			require.Equal(t, c.code, code, "stdout: %s\nstderr: %s", out, errOut)
			if c.code == 0 {
				require.Contains(t, out, c.want)
			} else {
				require.Contains(t, errOut, c.want)
			}
		})
	}
	_, errOut, code := runPodium(t, "check", "--config", filepath.Join(dir, "missing.yaml"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "missing.yaml")

	out, _, code := runPodium(t, "check")
	require.Equal(t, 0, code)
	require.Contains(t, out, "__defaultVhost__", "no --config: the embedded default")

	_, errOut, code = runPodium(t, "serve", "--config", write("bad-serve.yaml", "vhosts: [{name: __defaultVhost__, nope: 1}]\n"))
	require.Equal(t, 2, code, "serve with a bad config exits 2 too")
	require.Contains(t, errOut, "vhosts[0].nope")

	out, _, code = runPodium(t, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "podium ")
}
