package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// classFixture is a 12 s class: H.264 320x240 25 fps (GOP 1 s) + AAC
// 44.1 kHz, what a master pushes to the recorder.
func classFixture(t testing.TB) string {
	return fixture(t, "h264-aac-12s",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k")
}

// publishOnce sends file to url once, in real time, and waits until
// ffmpeg is done.
func publishOnce(t *testing.T, file, url string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-re", "-i", file, "-c", "copy", "-f", "flv", url).CombinedOutput()
	require.NoError(t, err, "publish %s: %s", url, out)
}

// mediaProbe is ffprobe's view of a recorded file.
type mediaProbe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Duration  string `json:"duration"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func probeFile(t *testing.T, path string) mediaProbe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", path).CombinedOutput()
	require.NoError(t, err, "ffprobe %s: %s", path, out)
	var p mediaProbe
	require.NoError(t, json.Unmarshal(out, &p), "%s", out)
	return p
}

// codec and duration of the file's stream of that kind ("" and 0: none).
func (p mediaProbe) stream(kind string) (string, float64) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			d, _ := strconv.ParseFloat(s.Duration, 64)
			if d == 0 {
				d, _ = strconv.ParseFloat(p.Format.Duration, 64)
			}
			return s.CodecName, d
		}
	}
	return "", 0
}

// decodesCleanly runs `ffmpeg -v error -i FILE -f null -`: every frame
// decodes, nothing is reported.
func decodesCleanly(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "decode %s: %s", path, out)
	require.Empty(t, strings.TrimSpace(string(out)), "decode errors in %s", path)
}

// recordedFiles lists the closed recordings (ext) under dir, sorted.
func recordedFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ext) && !strings.HasSuffix(p, ".tmp"+ext) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// apiRecording is one entry of GET /api/v1/recordings, exactly as the
// issue spells it.
type apiRecording struct {
	ID        string  `json:"id"`
	Vhost     string  `json:"vhost"`
	App       string  `json:"app"`
	Stream    string  `json:"stream"`
	File      string  `json:"file"`
	URL       string  `json:"url"`
	StartMs   int64   `json:"start_ms"`
	Duration  float64 `json:"duration"`
	Bytes     int64   `json:"bytes"`
	Recording bool    `json:"recording"`
}

func (a *api) recordings() []apiRecording {
	a.t.Helper()
	b := a.get("/api/v1/recordings")
	var raw map[string]json.RawMessage
	require.NoError(a.t, json.Unmarshal(b, &raw), "%s", b)
	require.JSONEq(a.t, "0", string(raw["code"]))
	var list []map[string]any
	require.NoError(a.t, json.Unmarshal(raw["recordings"], &list), "%s", b)
	for _, m := range list {
		for _, k := range []string{"id", "vhost", "app", "stream", "file", "url", "start_ms", "duration", "bytes", "recording"} {
			require.Contains(a.t, m, k, "recording entry %v", m)
		}
	}
	var out []apiRecording
	require.NoError(a.t, json.Unmarshal(raw["recordings"], &out))
	return out
}

// dvrYAML is a vhost recording under dir with the given extra dvr keys.
func dvrYAML(dir, hook string, extra ...string) string {
	y := "auth: {admin_password: dvr-secret}\nvhosts:\n  - name: __defaultVhost__\n    dvr:\n      enabled: true\n" +
		fmt.Sprintf("      path: %s/[app]/[stream]/[2006]-[01]-[02]_[15][04][05].mp4\n", dir)
	for _, e := range extra {
		y += "      " + e + "\n"
	}
	if hook != "" {
		y += "    hooks:\n      on_dvr: [\"" + hook + "\"]\n"
	}
	return y
}

func statusOf(t *testing.T, a *api, method, path string) int {
	t.Helper()
	code, _, _ := a.do(method, path, nil)
	return code
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
