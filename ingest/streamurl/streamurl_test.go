package streamurl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func known(names ...string) func(string) bool {
	return func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
}

func TestParseAndResolve(t *testing.T) {
	cfg := known(DefaultVhost, "transcode", "cdn.example.com")
	cases := []struct {
		name, tc, app, stream string
		wantApp, wantStream   string
		wantVhost             string
		wantErr               string
	}{
		{"plain", "rtmp://127.0.0.1:1935/live", "live", "s1", "live", "s1", DefaultVhost, ""},
		{"vhost on stream", "rtmp://127.0.0.1/live", "live", "s1?vhost=transcode", "live", "s1", "transcode", ""},
		{"vhost on app", "rtmp://127.0.0.1/live?vhost=transcode", "live?vhost=transcode", "s1", "live", "s1", "transcode", ""},
		{"domain alias", "rtmp://h/live", "live", "s1?domain=transcode", "live", "s1", "transcode", ""},
		{"tcUrl host", "rtmp://cdn.example.com/live", "live", "s1", "live", "s1", "cdn.example.com", ""},
		{"tcUrl host unknown", "rtmp://other.example.com/live", "live", "s1", "live", "s1", DefaultVhost, ""},
		{"unknown explicit", "rtmp://h/live", "live", "s1?vhost=nope", "", "", "", "unknown vhost"},
		{"dotdot stream", "rtmp://h/live", "live", "..", "", "", "", "dot segment"},
		{"traversal", "rtmp://h/live", "live", "../../etc/passwd", "", "", "", "not in"},
		{"nul", "rtmp://h/live", "live", "s\x001", "", "", "", "not in"},
		{"slash app", "rtmp://h/a/b", "a/b", "s1", "", "", "", "not in"},
		{"empty stream", "rtmp://h/live", "live", "", "", "", "", "empty"},
		{"dots ok", "rtmp://h/live", "live", "cam.1-a_b", "live", "cam.1-a_b", DefaultVhost, ""},
		{"bad query", "rtmp://h/live", "live", "s1?a=%zz", "", "", "", "query"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := Parse(c.tc, c.app, c.stream)
			var vhost string
			if err == nil {
				vhost, err = req.ResolveVhost(cfg)
			}
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.wantApp, req.App)
			require.Equal(t, c.wantStream, req.Stream)
			require.Equal(t, c.wantVhost, vhost)
		})
	}
}

func TestPlayName(t *testing.T) {
	for in, want := range map[string]string{
		"cam1.flv": "cam1", "cam1.m3u8": "cam1", "cam1.ts": "cam1",
		"cam1": "cam1", "cam.1": "cam.1", ".flv": ".flv", "a.mp4": "a.mp4",
		"x.flv.flv": "x.flv", "cam1.FLV": "cam1.FLV", "..flv": "..flv",
	} {
		require.Equal(t, want, PlayName(in), in)
	}
}

func TestRedacted(t *testing.T) {
	req, err := Parse("", "live", "s1?key=hunter2&vhost=transcode&Token=abc")
	require.NoError(t, err)
	red := req.Redacted()
	require.NotContains(t, red, "hunter2")
	require.NotContains(t, red, "abc")
	require.Contains(t, red, "vhost=transcode")
}

func FuzzParse(f *testing.F) {
	f.Add("rtmp://h/live", "live?vhost=x", "s1?key=1")
	f.Add("rtmp://[::1]:1935/a", "a", "../..")
	f.Fuzz(func(t *testing.T, tc, app, stream string) {
		req, err := Parse(tc, app, stream)
		if err != nil {
			return
		}
		// Whatever is accepted is safe as a path segment.
		require.NoError(t, ValidName(req.App))
		require.NoError(t, ValidName(req.Stream))
		require.NotContains(t, req.App+req.Stream, "/")
		require.NotEqual(t, "..", req.Stream)
		require.NoError(t, ValidName(PlayName(req.Stream)), "a play name stays a safe name")
		_, _ = req.ResolveVhost(func(string) bool { return true })
		_ = req.Redacted()
	})
}
