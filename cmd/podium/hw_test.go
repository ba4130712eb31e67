package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHWCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := execute([]string{"hw", "--device", "/dev/dri/renderD129"}, &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 5, stdout.String())
	require.Equal(t, []string{"BACKEND", "ENCODER", "DEVICE", "USABLE", "REASON"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"software", "libx264", "cpu", "yes", "-"}, strings.Fields(lines[4]))
	for i, b := range []string{"nvenc", "qsv", "vaapi"} {
		f := strings.Fields(lines[i+1])
		require.Equal(t, b, f[0])
		if f[3] == "no" {
			require.Greater(t, len(f), 4, "a reason for %s", b)
		}
	}
	require.Contains(t, lines[3], "/dev/dri/renderD129", "--device reaches the vaapi probe")
}
