package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
)

// TestConfigFiles runs the real `podium check` on every config file that
// ships in configs/ (the ones a school's IT person copies onto its boxes),
// then checks each classroom role does its job, read back from the
// effective config check prints.
func TestConfigFiles(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	require.Subset(t, names, []string{"podium.yaml", "relay.yaml", "master.yaml", "slave.yaml", "recorder.yaml"})

	eff := map[string]*configs.Config{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, errOut, code := runPodium(t, "check", "--config", f)
			require.Equal(t, 0, code, "podium check --config %s:\n%s", f, errOut)
			c, err := configs.Parse([]byte(out), nil)
			require.NoError(t, err, "the effective config check prints parses back")
			eff[filepath.Base(f)] = c
		})
	}

	t.Run("roles", func(t *testing.T) {
		for _, name := range []string{"relay.yaml", "master.yaml", "slave.yaml", "recorder.yaml"} {
			c := eff[name]
			require.NotNil(t, c, name)
			require.Equal(t, "/var/lib/podium", c.DataDir, "%s: the .deb's data directory", name)
			require.Equal(t, ":1935", c.Listen.RTMP, name)
		}

		// relay: forwards the teacher's stream untouched to one master.
		relay := eff["relay.yaml"].Vhost(configs.DefaultVhost)
		require.Nil(t, relay.Transcode)
		require.NotNil(t, relay.Forward)
		require.Len(t, relay.Forward.Destinations, 1)
		require.False(t, relay.HLS != nil && relay.HLS.Enabled)

		// master: transcodes __defaultVhost__ into a vhost that forwards to
		// slaves and recorder, with hops for the relay in front of it.
		m := eff["master.yaml"]
		in := m.Vhost(configs.DefaultVhost)
		require.NotNil(t, in.Transcode)
		require.Equal(t, "aac", in.Transcode.Audio.Codec)
		out := m.Vhost(in.Transcode.To)
		require.NotNil(t, out, "the transcode target exists")
		require.NotNil(t, out.Forward)
		require.GreaterOrEqual(t, len(out.Forward.Destinations), 3, "two slaves and the recorder")
		require.Equal(t, 2, out.Forward.HopLimit, "streams come through the relay: one hop more")
		require.Nil(t, in.Forward, "only the normalized stream is forwarded")
		require.NotNil(t, out.Hooks, "hooks sketched")
		// The relay points at the master, and the master does not forward to itself.
		require.NotContains(t, out.Forward.Destinations, relay.Forward.Destinations[0])

		// slave: HLS for students, nothing forwarded.
		s := eff["slave.yaml"].Vhost(configs.DefaultVhost)
		require.NotNil(t, s.HLS)
		require.True(t, s.HLS.Enabled)
		require.Equal(t, "/var/lib/podium/hls", s.HLS.Path)
		require.Nil(t, s.Forward)
		require.Nil(t, s.Transcode, "streams arrive already normalized")

		// recorder: receives, forwards nothing.
		r := eff["recorder.yaml"]
		require.Nil(t, r.Vhost(configs.DefaultVhost).Forward)
		require.True(t, slices.Equal([]string{"none"}, r.HWAccel.Prefer))
		require.NotNil(t, r.Vhost(configs.DefaultVhost).DVR, "the recorder records")
		require.True(t, r.Vhost(configs.DefaultVhost).DVR.Enabled)
	})

	t.Run("broken copies exit 2 naming the key", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"relay.yaml", "master.yaml", "slave.yaml", "recorder.yaml", "podium.yaml"} {
			b, err := os.ReadFile(filepath.Join("../configs", name))
			require.NoError(t, err)
			// A typo an IT person makes: listen.rtmp spelt rtpm.
			broken := strings.Replace(string(b), "\n  rtmp: ", "\n  rtpm: ", 1)
			require.NotEqual(t, string(b), broken, "%s has a listen.rtmp line", name)
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, []byte(broken), 0o644))
			_, errOut, code := runPodium(t, "check", "--config", path)
			require.Equal(t, 2, code, "%s: %s", name, errOut)
			require.Contains(t, errOut, "listen.rtpm", name)
		}
		// A bad value in the master's forward list names its position.
		b, err := os.ReadFile("../configs/master.yaml")
		require.NoError(t, err)
		broken := strings.Replace(string(b), `"192.168.1.7:1935"`, `"http://192.168.1.7"`, 1)
		require.NotEqual(t, string(b), broken)
		path := filepath.Join(dir, "master-bad-dest.yaml")
		require.NoError(t, os.WriteFile(path, []byte(broken), 0o644))
		_, errOut, code := runPodium(t, "check", "--config", path)
		require.Equal(t, 2, code, errOut)
		require.Contains(t, errOut, "vhosts[1].forward.destinations[1]")
	})
}
