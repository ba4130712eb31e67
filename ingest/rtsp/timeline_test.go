package rtsp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimelineMonotonicAcrossWrapAndJumps(t *testing.T) {
	now := time.Unix(100, 0)
	tl := newTimeline(func() time.Time { return now })
	a := tl.track(8000, false)
	ts := uint32(0xffff_f000) // wraps after a few packets
	var last time.Duration
	for i := range 100 {
		if i == 50 {
			ts += 0x4000_0000 // a bogus jump of hours
		}
		got := a.pts(ts, time.Time{}, false)
		if i > 0 {
			require.Greater(t, got, last, "packet %d", i)
			require.Less(t, got-last, time.Second, "packet %d: no jump", i)
		}
		last = got
		ts += 160 // 20 ms
	}
	require.InDelta(t, float64(99*20*time.Millisecond), float64(last), float64(30*time.Millisecond))
}

func TestTimelineFirstPacketAlignment(t *testing.T) {
	now := time.Unix(100, 0)
	tl := newTimeline(func() time.Time { return now })
	v := tl.track(90000, true)
	a := tl.track(48000, false)
	require.Equal(t, time.Duration(0), v.pts(12345, time.Time{}, false))
	now = now.Add(300 * time.Millisecond)
	// Audio's first packet arrives 300 ms later: it starts at 300 ms,
	// whatever its random RTP start.
	require.Equal(t, 300*time.Millisecond, a.pts(999, time.Time{}, false))
	require.Equal(t, 320*time.Millisecond, a.pts(999+960, time.Time{}, false))
	require.Equal(t, 400*time.Millisecond, v.pts(12345+36000, time.Time{}, false))
}

// Sender reports move audio onto the video's clock once both have one.
func TestTimelineSyncsBySenderReports(t *testing.T) {
	now := time.Unix(100, 0)
	tl := newTimeline(func() time.Time { return now })
	v := tl.track(90000, true)
	a := tl.track(8000, false)
	ntp0 := time.Unix(5000, 0)
	v.pts(0, time.Time{}, false)
	now = now.Add(500 * time.Millisecond) // audio arrives late: first-packet alignment is 500 ms off
	require.Equal(t, 500*time.Millisecond, a.pts(0, time.Time{}, false))
	// The video's report: RTP 9000 (100 ms) is NTP ntp0.
	require.Equal(t, 100*time.Millisecond, v.pts(9000, ntp0, true))
	// The audio's report says RTP 800 (its 100 ms) was sampled at ntp0+100ms:
	// it belongs at 200 ms on the video's clock.
	require.Equal(t, 600*time.Millisecond, a.pts(800, time.Time{}, false))
	got := a.pts(1600, ntp0.Add(200*time.Millisecond), true)
	require.Equal(t, 600*time.Millisecond, got, "never back: held at the last output")
	// From there on audio runs 400 ms earlier than before: RTP 4800 (its
	// 600 ms) is at 700 ms, not 1100 ms.
	require.Equal(t, 700*time.Millisecond, a.pts(4800, time.Time{}, false))
	require.Equal(t, 200*time.Millisecond, v.pts(18000, time.Time{}, false))
}

func TestBackoffSchedule(t *testing.T) {
	var o SourcesOptions
	o.defaults()
	retry := o.retry()
	wants := map[int]time.Duration{
		1: time.Second, 6: time.Second, 7: 2 * time.Second, 8: 4 * time.Second, 10: 16 * time.Second, 11: 30 * time.Second, 40: 30 * time.Second,
	}
	for fails := 1; fails <= 40; fails++ {
		got := retry.Next()
		want, ok := wants[fails]
		if !ok {
			continue
		}
		require.GreaterOrEqual(t, got, want*8/10, "fails %d", fails)
		require.LessOrEqual(t, got, want*12/10, "fails %d", fails)
	}
}
