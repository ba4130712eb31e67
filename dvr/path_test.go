package dvr

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

func TestTemplateExpand(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.Local)
	tests := []struct {
		tmpl string
		key  stream.Key
		want string
	}{
		{"/d/[app]/[stream]/[2006]-[01]-[02]_[15][04][05].mp4", stream.Key{Vhost: "v", App: "live", Name: "room1"},
			"/d/live/room1/2026-03-04_050607.mp4"},
		{"/d/[vhost]/[app]-[stream]-[timestamp].flv", stream.Key{Vhost: "v", App: "live", Name: "r"},
			"/d/v/live-r-" + itoa(int(at.UnixMilli())) + ".flv"},
		{"/d/[stream].[999].mp4", stream.Key{App: "a", Name: "x"}, "/d/x.890.mp4"},
		// Names from the publisher cannot climb out or cut the path.
		{"/d/[app]/[stream].mp4", stream.Key{App: "..", Name: "../../etc/passwd"}, "/d/%2E./%2E.%2F..%2Fetc%2Fpasswd.mp4"},
		{"/d/[app]/[stream].mp4", stream.Key{App: "live", Name: "a\x00b/c"}, "/d/live/a%00b%2Fc.mp4"},
		{"/d/[app]/[stream].mp4", stream.Key{App: "live", Name: ""}, "/d/live/_.mp4"},
		{"/d/[app]/[stream].mp4", stream.Key{App: "live", Name: ".hidden"}, "/d/live/%2Ehidden.mp4"},
	}
	for _, tt := range tests {
		tm, err := ParseTemplate(tt.tmpl)
		require.NoError(t, err, tt.tmpl)
		got := tm.Expand(tt.key, at)
		require.Equal(t, tt.want, got)
		require.True(t, strings.HasPrefix(got, tm.Root()+"/"), got)
		k, ok := tm.Match(got)
		require.True(t, ok, got)
		if strings.Contains(tt.tmpl, "[stream]") {
			require.Equal(t, tt.key.Name, k.Name)
		}
	}
}

func TestTemplateRejects(t *testing.T) {
	for _, bad := range []string{"", "/d/x.mkv", "/d/[nope].mp4", "/d/[app.mp4", "/d/a\x00b.mp4"} {
		_, err := ParseTemplate(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestEscapeLongName(t *testing.T) {
	long := strings.Repeat("é/", 200)
	e := EscapeName(long)
	require.LessOrEqual(t, len(e), maxEscaped)
	require.NotContains(t, e, "/")
	require.NotEqual(t, EscapeName(long), EscapeName(long+"x"), "cut names stay distinct")
}

// FuzzTemplate: whatever the publisher's names, the file stays under the
// template's root and in its own directory level.
func FuzzTemplate(f *testing.F) {
	f.Add("live", "room1", "v")
	f.Add("..", "../../x", "")
	f.Add("a/b", "\x00", "%2F")
	f.Add(".", "..", "...")
	tm, err := ParseTemplate("/rec/[vhost]/[app]/[stream]/[2006][01][02].mp4")
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, app, name, vhost string) {
		key := stream.Key{Vhost: vhost, App: app, Name: name}
		got := tm.Expand(key, at)
		if !strings.HasPrefix(got, "/rec/") || filepath.Clean(got) != got {
			t.Fatalf("escaped the root: %q", got)
		}
		if n := strings.Count(got, "/"); n != 5 {
			t.Fatalf("%d path levels in %q", n, got)
		}
		if strings.ContainsRune(got, 0) {
			t.Fatalf("NUL in %q", got)
		}
		k, ok := tm.Match(got)
		if !ok {
			t.Fatalf("no match for %q", got)
		}
		if !strings.Contains(EscapeName(name), "~") && k.Name != name { // ~ only in a cut name
			t.Fatalf("name %q read back as %q", name, k.Name)
		}
	})
}

// FuzzParseTemplate: a configured path never panics the parser.
func FuzzParseTemplate(f *testing.F) {
	f.Add("/d/[app]/[stream].mp4")
	f.Add("[[[].flv")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTemplate(s)
		if err != nil {
			return
		}
		_ = tm.Expand(stream.Key{Vhost: "v", App: "a", Name: "n"}, time.Now())
	})
}

func TestTimelineStaysMonotonic(t *testing.T) {
	rec := &recorder{log: slog.New(slog.DiscardHandler)}
	v := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264}
	a := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC}
	var last [3]time.Duration
	step := func(tr *media.Track, dts time.Duration) time.Duration {
		p := media.Packet{Track: tr, DTS: dts, PTS: dts}
		out, pts := rec.timeline(&p)
		require.GreaterOrEqual(t, pts, out)
		if last[tr.Kind] != 0 {
			require.Greater(t, out, last[tr.Kind], "dts of %s went back at input %s", tr.Kind, dts)
		}
		last[tr.Kind] = out
		return out
	}
	for ms := 0; ms < 5000; ms += 40 {
		step(v, time.Duration(ms)*time.Millisecond)
		step(a, time.Duration(ms+3)*time.Millisecond)
	}
	before := last[media.KindVideo]
	// The publisher's clock restarts at 0: the recording goes on.
	got := step(v, 0)
	require.InDelta(t, float64(before+20*time.Millisecond), float64(got), float64(5*time.Millisecond))
	for ms := 40; ms < 2000; ms += 40 {
		step(v, time.Duration(ms)*time.Millisecond)
		step(a, time.Duration(ms)*time.Millisecond)
	}
	// A jump an hour ahead is smoothed over too; small reorderings are
	// clamped.
	before = last[media.KindVideo]
	got = step(v, time.Hour)
	require.Less(t, got-before, time.Second)
	step(v, time.Hour-5*time.Millisecond)
}
