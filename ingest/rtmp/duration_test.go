package rtmp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
)

func TestPlayCommandDuration(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want time.Duration
	}{
		{"rtmpdump -v -B 5", flv.CommandBody("play", 4, nil, "cam1", -1000.0, 5000.0), 5 * time.Second},
		{"no duration", flv.CommandBody("play", 4, nil, "cam1", -1000.0), 0},
		{"-1: to the end", flv.CommandBody("play", 4, nil, "cam1", -2000.0, -1.0), 0},
		{"not a number", flv.CommandBody("play", 4, nil, "cam1", -1000.0, "5000"), 0},
		{"not play", flv.CommandBody("publish", 4, nil, "cam1", "live"), 0},
		{"huge", flv.CommandBody("play", 4, nil, "cam1", 0.0, 1e300), 0},
		{"truncated", flv.CommandBody("play", 4, nil, "cam1", 0.0, 5000.0)[:20], 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cn conn
			cn.command(c.body)
			require.Equal(t, c.want, cn.playDuration)
		})
	}
}

func TestPlayClock(t *testing.T) {
	tr := &media.Track{Kind: media.KindVideo}
	at := func(ms ...int) []media.Packet {
		var b []media.Packet
		for _, m := range ms {
			b = append(b, media.Packet{Track: tr, DTS: time.Duration(m) * time.Millisecond})
		}
		return b
	}
	var pc playClock
	got, done := pc.take(at(10000, 10040, 10020, 10080), time.Second) // a step back counts nothing
	require.Len(t, got, 4)
	require.False(t, done)
	require.Equal(t, 100*time.Millisecond, pc.elapsed)
	got, done = pc.take(at(10500, 11000, 11040), time.Second)
	require.True(t, done)
	require.Len(t, got, 2, "ends with the packet that reaches the duration")
}
