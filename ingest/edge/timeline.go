package edge

import (
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

// sameTimelineWindow: a new origin whose first keyframe is within this of
// where the last origin stopped carries the same timeline (the forward
// topology: one relay pushes the same packets to every origin).
const sameTimelineWindow = 10 * time.Second

// timeline keeps a pulled stream's output monotonic across origins. After
// a switch it drops everything up to the new origin's first usable video
// keyframe (or first audio frame, for audio-only streams); then, when the
// new origin carries the same timeline, it keeps the timestamps and drops
// what was already sent; else it rebases the new origin's timestamps to
// continue one frame after the last output. Within one origin it drops a
// packet that would go back in time on its track.
type timeline struct {
	offset    time.Duration // added to the origin's timestamps
	lastSrc   time.Duration // the last origin timestamp that went out
	lastOut   [3]time.Duration
	sent      [3]bool
	gap       time.Duration // the last video (or audio) frame interval
	switching bool          // a new origin: wait for its first keyframe
	hasVideo  bool
	started   bool
}

// switched starts a new origin.
func (t *timeline) switched() {
	if t.started {
		t.switching = true
	}
}

// apply maps p onto the output timeline; false drops it. The first packet
// after a switch comes back with Discontinuity set.
func (t *timeline) apply(p *media.Packet) bool {
	k := p.Track.Kind
	if k != media.KindVideo && k != media.KindAudio {
		return false
	}
	if k == media.KindVideo {
		t.hasVideo = true
	}
	if t.switching {
		if t.hasVideo && !p.IsVideoKey() {
			return false
		}
		if d := p.DTS - t.lastSrc; d < -sameTimelineWindow || d > sameTimelineWindow {
			last := max(t.lastOut[media.KindVideo], t.lastOut[media.KindAudio])
			t.offset = last + max(t.gap, time.Millisecond) - p.DTS
		}
		if p.DTS+t.offset <= t.lastOut[k] && t.sent[k] {
			return false // same timeline, already sent: wait for a later keyframe
		}
		t.switching = false
		p.Discontinuity = true
	}
	out := p.DTS + t.offset
	if t.sent[k] && out <= t.lastOut[k] {
		return false
	}
	if t.sent[k] && (k == media.KindVideo || !t.hasVideo) {
		if d := out - t.lastOut[k]; d > 0 && d < time.Second {
			t.gap = d
		}
	}
	p.PTS += t.offset
	p.DTS = out
	t.lastOut[k], t.sent[k] = out, true
	t.lastSrc = p.DTS - t.offset
	t.started = true
	return true
}
