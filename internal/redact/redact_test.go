package redact

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKey(t *testing.T) {
	for _, k := range []string{"admin_password", "publish_key", "play_secret", "redis_password", "api_token", "key", "Password"} {
		require.True(t, Key(k), k)
	}
	for _, k := range []string{"url", "destinations", "backend", "hop_limit", "gop_cache", "name", "keyframe", "monkey"} {
		require.False(t, Key(k), k)
	}
}

func TestURL(t *testing.T) {
	cases := map[string]string{
		"rtsp://cam:pw123@10.0.0.9/s":                  "rtsp://xxx@10.0.0.9/s",
		"redis://:redispw@10.0.0.2:6379/0":             "redis://xxx@10.0.0.2:6379/0",
		"http://h/on_publish?token=t0k&room=1":         "http://h/on_publish?room=1&token=xxx",
		"rtmp://s/live/[stream]?key=k3y":               "rtmp://s/live/[stream]?key=xxx",
		"http://h/plain":                               "http://h/plain",
		"http://h/%zz?token=s3cret":                    "(unparsable url)",
		"rtmp://u:p@s/live?Secret=x&Password=y&sign=z": "rtmp://xxx@s/live?Password=xxx&Secret=xxx&sign=xxx",
	}
	for in, want := range cases {
		require.Equal(t, want, URL(in), in)
	}
}

func TestText(t *testing.T) {
	in := `push to rtmp://u:pw@s/live/a?token=t0k: dial: refused; Post "http://h/x?key=k3y&a=1"`
	out := Text(in)
	for _, secret := range []string{"pw", "t0k", "k3y"} {
		require.NotContains(t, out, secret+"@")
		require.NotContains(t, out, "="+secret)
	}
	require.Contains(t, out, "rtmp://xxx@s/live/a?token=xxx")
	require.Contains(t, out, "a=1")
	require.Equal(t, "no secrets here", Text("no secrets here"))
}
