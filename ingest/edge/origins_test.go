package edge

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

func TestOriginsSpreadAndBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	o := newOrigins(10 * time.Second)
	o.now = func() time.Time { return now }
	a, b := "a:1935", "b:1935"
	list := []string{a, b}
	none := map[string]bool{}

	// Streams spread: the first pick of each goes to the least busy.
	first := map[string]int{}
	for i := range 10 {
		j := o.pick(list, none, "", fmt.Sprintf("live/s%d", i))
		first[j]++
		o.busy(j, 1)
	}
	require.Equal(t, 5, first[a])
	require.Equal(t, 5, first[b])

	// Idle: the stream's name picks, and not always the first.
	o2 := newOrigins(10 * time.Second)
	picks := map[string]bool{}
	for i := range 20 {
		picks[o2.pick(list, none, "", fmt.Sprintf("live/x%d", i))] = true
	}
	require.Len(t, picks, 2, "never always the first")

	// A failed origin is skipped by every stream, for the backoff.
	o.failed(a, errors.New("connection refused"))
	require.False(t, o.healthy(a))
	for i := range 5 {
		require.Equal(t, b, o.pick(list, none, "", fmt.Sprintf("live/y%d", i)))
	}
	// b tried and failed too: nothing left this round.
	require.Equal(t, "", o.pick(list, map[string]bool{b: true}, b, "live/y"))
	// Every origin in backoff: the one that comes back first.
	o.failed(b, errors.New("reset"))
	require.Equal(t, "", o.pick(list, none, "", "live/z"))
	require.Equal(t, a, o.soonest(list))
	now = now.Add(11 * time.Second)
	require.NotEqual(t, "", o.pick(list, map[string]bool{a: true}, a, "live/z"))
	// prev goes last.
	o3 := newOrigins(time.Second)
	require.Equal(t, b, o3.pick(list, none, a, "live/anything"))
	require.Equal(t, a, o3.pick(list, none, b, "live/anything"))
	require.Equal(t, []string{a, b}, o.known())
}

func TestPullURL(t *testing.T) {
	e := New(nil, nil, Options{}, nil)
	for _, c := range []struct {
		origin, edgeVhost, originVhost, want string
	}{
		{"10.0.0.1:1935", "__defaultVhost__", "", "rtmp://10.0.0.1:1935/live/class"},
		{"10.0.0.1", "__defaultVhost__", "transcode", "rtmp://10.0.0.1:1935/live/class?vhost=transcode"},
		{"10.0.0.1:1936", "campus", "", "rtmp://10.0.0.1:1936/live/class?vhost=campus"},
		{"rtmp://10.0.0.2/[app]/[stream]?vhost=[vhost]", "campus", "transcode", "rtmp://10.0.0.2:1935/live/class?vhost=transcode"},
		{"rtmp://10.0.0.2:1937/origin", "__defaultVhost__", "", "rtmp://10.0.0.2:1937/origin/class"},
	} {
		p := newPull(e, stream.Key{Vhost: c.edgeVhost, App: "live", Name: "class"},
			&Config{Vhost: c.edgeVhost, OriginVhost: c.originVhost, Origins: []string{c.origin}})
		got, err := p.url(candidate{name: c.origin})
		require.NoError(t, err)
		require.Equal(t, c.want, got, c.origin)
	}
}
