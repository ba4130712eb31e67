package rtsp

import (
	"sync"
	"time"
)

// timeline turns the RTP timestamps of a session's tracks into one
// monotonic clock that starts near 0, keeping the tracks in sync:
//
//   - each track's 32-bit RTP time is unwrapped into a 64-bit count;
//   - a track starts at the wall-clock time since the session's first
//     packet (first-packet alignment), which is right within network
//     jitter when the sender has no RTCP;
//   - once the reference track (the first video track, else the first
//     track) and another track both have RTCP sender reports, that other
//     track is moved once so that both follow the sender's NTP clock;
//   - a jump of more than maxJump (a camera reboot, a bogus timestamp) is
//     taken as a new timeline joined right after the last output, so time
//     never jumps nor goes back by more than the B-frame reordering.
//
// Its methods are safe for concurrent use (gortsplib calls packet
// callbacks of UDP and TCP tracks from different goroutines).
type timeline struct {
	mu     sync.Mutex
	now    func() time.Time
	start  time.Time
	ref    *trackClock
	ntpRef time.Time     // NTP of the reference track at outRef
	outRef time.Duration // output time of the reference track at ntpRef
}

// maxJump is the largest step between consecutive RTP timestamps taken
// as is.
const maxJump = 5 * time.Second

// trackClock is one track of a timeline.
type trackClock struct {
	tl      *timeline
	rate    int64
	video   bool
	started bool
	prevRaw uint32
	ext     int64 // unwrapped RTP time, in 1/rate
	offset  int64 // output = ext + offset, in 1/rate
	last    int64 // last output, in 1/rate
	step    int64 // last forward step, in 1/rate
	synced  bool  // aligned to the reference by sender reports
}

func newTimeline(now func() time.Time) *timeline {
	if now == nil {
		now = time.Now
	}
	return &timeline{now: now}
}

// track adds a track with the given RTP clock rate.
func (tl *timeline) track(rate int, video bool) *trackClock {
	return &trackClock{tl: tl, rate: int64(max(rate, 1)), video: video}
}

// pts returns the output time of an RTP timestamp of this track. ntp is the
// packet's sender time from RTCP sender reports, when known.
func (c *trackClock) pts(raw uint32, ntp time.Time, hasNTP bool) time.Duration {
	tl := c.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if !c.started {
		now := tl.now()
		if tl.start.IsZero() {
			tl.start = now
		}
		c.started = true
		c.prevRaw = raw
		c.offset = durToTicks(now.Sub(tl.start), c.rate)
		c.last = c.offset
		if tl.ref == nil || (c.video && !tl.ref.video && tl.ntpRef.IsZero()) {
			tl.ref = c
		}
		out := c.syncLocked(c.offset, ntp, hasNTP)
		c.last = out
		return ticksToDur(out, c.rate)
	}
	d := int64(int32(raw - c.prevRaw))
	c.prevRaw = raw
	maxStep := durToTicks(maxJump, c.rate)
	if d > maxStep || d < -maxStep {
		// A jump: continue right after the last output.
		c.offset += c.last + max(c.step, 1) - (c.ext + d + c.offset)
	} else if d > 0 {
		c.step = d
	}
	c.ext += d
	out := c.ext + c.offset
	out = c.syncLocked(out, ntp, hasNTP)
	if !c.video && out < c.last {
		out = c.last // audio never goes back (after a sync correction)
	}
	if out > c.last {
		c.last = out
	}
	return ticksToDur(out, c.rate)
}

// syncLocked aligns the track to the reference by sender reports, once.
func (c *trackClock) syncLocked(out int64, ntp time.Time, hasNTP bool) int64 {
	tl := c.tl
	if !hasNTP || c.synced {
		return out
	}
	if c == tl.ref {
		if tl.ntpRef.IsZero() {
			tl.ntpRef, tl.outRef = ntp, ticksToDur(out, c.rate)
		}
		c.synced = true
		return out
	}
	if tl.ntpRef.IsZero() {
		return out // wait for the reference's first report
	}
	want := durToTicks(tl.outRef+ntp.Sub(tl.ntpRef), c.rate)
	c.synced = true
	if corr := want - out; corr != 0 && ticksToDur(abs(corr), c.rate) < maxJump {
		c.offset += corr
		out += corr
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// durToTicks converts d to units of 1/rate without overflow for any
// realistic duration.
func durToTicks(d time.Duration, rate int64) int64 {
	secs := int64(d / time.Second)
	rem := int64(d % time.Second)
	return secs*rate + rem*rate/int64(time.Second)
}

// ticksToDur converts v units of 1/rate to a duration.
func ticksToDur(v, rate int64) time.Duration {
	secs := v / rate
	rem := v % rate
	return time.Duration(secs)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}
