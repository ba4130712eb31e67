package configs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// secretsYAML has a secret in every place a config can hold one.
const secretsYAML = `
auth: {admin_password: "adm1npw"}
sources:
  - {url: "rtsp://cam:c4mpw@10.0.0.9/stream", publish: live/cam}
vhosts:
  - name: __defaultVhost__
    forward:
      destinations: ["rtmp://10.0.0.2/live/[stream]?token=fwdt0k", "10.0.0.3:1935"]
      backend: "http://bk:bkpw@10.0.0.4/fwd?secret=bks3c"
    hooks:
      on_publish: ["http://10.0.0.5/h?key=h00kkey&room=1"]
      on_play: ["http://hk:hkpw@10.0.0.5/play"]
    security: {publish_key: "pubk3y"}
cluster: {redis: "redis://:r3dispw@127.0.0.1:6379/0", node: n1, play_secret: "pl4y-s3cret-0123456789"}
`

var configSecrets = []string{"adm1npw", "c4mpw", "fwdt0k", "bkpw", "bks3c", "h00kkey", "hkpw", "pubk3y", "r3dispw", "pl4y-s3cret"}

func TestRedactedYAML(t *testing.T) {
	c, err := Parse([]byte(secretsYAML), nil)
	require.NoError(t, err)

	out, err := c.RedactedYAML()
	require.NoError(t, err)
	for _, s := range configSecrets {
		require.NotContains(t, string(out), s)
	}
	require.Contains(t, string(out), "admin_password: <redacted, see --show-secrets>")
	require.Contains(t, string(out), "publish_key: <redacted, see --show-secrets>")
	require.Contains(t, string(out), "rtsp://xxx@10.0.0.9/stream")
	require.Contains(t, string(out), "redis: redis://xxx@127.0.0.1:6379/0")
	require.Contains(t, string(out), "play_secret: <redacted, see --show-secrets>")
	require.Contains(t, string(out), "rtmp://10.0.0.2/live/[stream]?token=xxx")
	require.Contains(t, string(out), "- 10.0.0.3:1935", "what holds no secret is printed as it is")
	require.Contains(t, string(out), "room=1")

	// The redacted print is still a valid config of the same shape.
	back, err := Parse(out, nil)
	require.NoError(t, err)
	require.Len(t, back.Vhosts[0].Forward.Destinations, 2)

	// YAML (check --show-secrets) keeps everything.
	full, err := c.YAML()
	require.NoError(t, err)
	for _, s := range configSecrets {
		require.Contains(t, string(full), s)
	}
}

func TestRedactedYAMLEmptySecretsStayEmpty(t *testing.T) {
	out, err := Default().RedactedYAML()
	require.NoError(t, err)
	require.NotContains(t, string(out), "<redacted", "an unset secret prints as unset")
	full, err := Default().YAML()
	require.NoError(t, err)
	require.Equal(t, strings.Count(string(full), "\n"), strings.Count(string(out), "\n"))
}

func TestValidationErrorsHideSecrets(t *testing.T) {
	_, err := Parse([]byte(`
vhosts:
  - name: __defaultVhost__
    forward: {destinations: ["ftp://u:l34kpw@h/x?token=l34kt0k"], backend: "ftp://b:l34kbk@h"}
    hooks: {on_publish: ["ftp://h/x?key=l34kh00k"]}
`), nil)
	require.Error(t, err)
	for _, s := range []string{"l34kpw", "l34kt0k", "l34kbk", "l34kh00k"} {
		require.NotContains(t, err.Error(), s)
	}
	require.Contains(t, err.Error(), "vhosts[0].forward.destinations[0]")
}
