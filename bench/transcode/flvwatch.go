package main

import "sync/atomic"

// FLV tag types and the SoundFormats of AAC and Speex (FLV spec, E.4.2.1).
const (
	flvTagAudio      = 8
	flvTagVideo      = 9
	soundFormatAAC   = 10
	soundFormatSpeex = 11
)

// flvWatch is the stdout of an ffmpeg player (`-c copy -f flv pipe:1`): it
// counts bytes and, parsing the FLV tag stream as it goes (without keeping
// it), the video tags and the audio tags by SoundFormat. Only one goroutine
// writes; the counters are read concurrently.
type flvWatch struct {
	bytes      atomic.Int64
	video      atomic.Int64
	aac        atomic.Int64
	otherAudio atomic.Int64
	lastOther  atomic.Int32 // SoundFormat of the last non-AAC audio tag

	pre        int // bytes of FLV header + PreviousTagSize0 still to skip
	hdr        [11]byte
	hn         int
	body       int  // body bytes of the current tag still to skip
	audioFirst bool // the next body byte is an audio tag's first byte
	trailer    int  // PreviousTagSize bytes still to skip
}

func newFLVWatch() *flvWatch { return &flvWatch{pre: 13} }

// reset starts a new FLV stream (the player was restarted).
func (w *flvWatch) reset() {
	w.pre, w.hn, w.body, w.audioFirst, w.trailer = 13, 0, 0, false, 0
}

func (w *flvWatch) Write(p []byte) (int, error) {
	n := len(p)
	w.bytes.Add(int64(n))
	for len(p) > 0 {
		switch {
		case w.pre > 0:
			k := min(w.pre, len(p))
			w.pre -= k
			p = p[k:]
		case w.trailer > 0:
			k := min(w.trailer, len(p))
			w.trailer -= k
			p = p[k:]
		case w.body > 0:
			if w.audioFirst {
				w.audioFirst = false
				if f := p[0] >> 4; f == soundFormatAAC {
					w.aac.Add(1)
				} else {
					w.otherAudio.Add(1)
					w.lastOther.Store(int32(f))
				}
			}
			k := min(w.body, len(p))
			w.body -= k
			p = p[k:]
			if w.body == 0 {
				w.trailer = 4
			}
		default:
			k := copy(w.hdr[w.hn:], p)
			w.hn += k
			p = p[k:]
			if w.hn < len(w.hdr) {
				continue
			}
			w.hn = 0
			size := int(w.hdr[1])<<16 | int(w.hdr[2])<<8 | int(w.hdr[3])
			switch w.hdr[0] & 0x1f {
			case flvTagVideo:
				w.video.Add(1)
			case flvTagAudio:
				w.audioFirst = size > 0
			}
			w.body = size
			if size == 0 {
				w.trailer = 4
			}
		}
	}
	return n, nil
}

// flvCounts is a snapshot of a watcher's counters.
type flvCounts struct{ bytes, video, aac, otherAudio int64 }

func (w *flvWatch) counts() flvCounts {
	return flvCounts{w.bytes.Load(), w.video.Load(), w.aac.Load(), w.otherAudio.Load()}
}

func (c flvCounts) sub(o flvCounts) flvCounts {
	return flvCounts{c.bytes - o.bytes, c.video - o.video, c.aac - o.aac, c.otherAudio - o.otherAudio}
}
