package dvr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// container is one file being written (MP4 or FLV).
type container interface {
	// write buffers one packet in memory (never blocks).
	write(p *media.Packet) error
	// due reports that flush should run: a fragment's worth is buffered.
	due() bool
	// flush writes what is buffered to the file.
	flush() error
	size() int64
	duration() time.Duration
	// finish closes the file (flushing what is pending when flush) and
	// gives it its final name; it reports whether an MP4 was rewritten
	// progressive.
	finish(final string, flush bool) (bool, error)
}

const (
	// jumpBack and jumpAhead bound a timestamp step that is still taken as
	// it is; a bigger one (a publisher's clock reset) is smoothed over.
	jumpBack  = time.Second
	jumpAhead = 10 * time.Second
	// retryAfter is how long a failed disk waits before the next try.
	retryAfter = 10 * time.Second
	// noKeyWarn is how long a publisher may send no keyframe before the
	// log says nothing is being recorded.
	noKeyWarn = time.Minute
	// preRoll is how long a new file waits for a track the stream has
	// not declared yet (an audio header after the first video frame).
	preRoll = 2 * time.Second
)

// recorder records one publish of one stream on its own goroutine.
type recorder struct {
	m    *Manager
	key  stream.Key
	set  Settings
	log  *slog.Logger
	info stream.ClientInfo
	st   *stream.Stream

	// the file being written
	cur      container
	tmp      string // its temporary name
	final    string // its name once closed
	start    time.Time
	startDTS time.Duration
	video    *media.Track
	audio    *media.Track
	flvOnly  bool // the stream has a codec MP4 cannot carry

	// the timeline: input DTS + off, never going back
	off      time.Duration
	last     time.Duration
	haveLast bool
	lastKind [3]time.Duration

	pre      []media.Packet // a new file's first packets (preroll)
	failedAt time.Time
	noted    bool // the Speex/FLV line was logged
	direct   bool // packet runs on the publisher's goroutine: no disk work

	mu   sync.Mutex // guards live
	live Recording
}

// run records until the stream ends or ctx is done.
func (rec *recorder) run(ctx context.Context, r *stream.Reader) {
	defer r.Close()
	rec.info = r.Stream().Publisher()
	rec.st = r.Stream()
	warn := time.AfterFunc(noKeyWarn, func() {
		if rec.liveSnapshot().ID == "" {
			if v, _ := rec.st.Tracks(); v != nil {
				rec.log.Warn("dvr: no video keyframe for a minute; nothing recorded yet", "after", noKeyWarn)
			}
		}
	})
	defer warn.Stop()
	// While a file is open, packets that only need buffering are taken on
	// the publisher's goroutine (no wake-up of this one per frame); the
	// rest (opening, cutting, a fragment due to be written) come through
	// the queue to this goroutine, which does the disk work.
	r.SetDirect(func(p *media.Packet, _ media.Metadata, _ uint64) stream.DirectResult {
		if !rec.canDirect(p) {
			return stream.DirectRefused
		}
		rec.direct = true
		rec.packet(p)
		rec.direct = false
		if rec.cur != nil && rec.cur.due() {
			return stream.DirectPending
		}
		return stream.DirectSent
	})
	var (
		batch []media.Packet
		err   error
	)
	for {
		batch, err = r.ReadBatch(ctx, batch[:0])
		for i := range batch {
			rec.packet(&batch[i])
		}
		if rec.cur != nil && rec.cur.due() {
			rec.flush()
		}
		r.Done()
		clear(batch)
		if cap(batch) > 4096 {
			batch = nil
		}
		if err != nil {
			break
		}
	}
	r.SetDirect(nil) // after this, no packet arrives on another goroutine
	rec.closeFile(true)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, stream.ErrReaderClosed) && ctx.Err() == nil {
		rec.log.Warn("dvr stopped", "err", err)
	}
}

// timeline maps a packet's DTS onto the recording's own clock: a jump
// back or far ahead is smoothed over, and each track's DTS only grows.
func (rec *recorder) timeline(p *media.Packet) (dts, pts time.Duration) {
	dts = p.DTS + rec.off
	if rec.haveLast && (dts < rec.last-jumpBack || dts > rec.last+jumpAhead) {
		rec.log.Warn("dvr: timestamps jumped; the recording continues without the gap",
			"from", rec.last, "to", dts)
		rec.off += rec.last + 20*time.Millisecond - dts
		dts = p.DTS + rec.off
	}
	k := p.Track.Kind
	if rec.haveLast && dts <= rec.lastKind[k] {
		dts = rec.lastKind[k] + time.Millisecond
	}
	rec.lastKind[k] = dts
	if !rec.haveLast || dts > rec.last {
		rec.last = dts
	}
	rec.haveLast = true
	cts := max(p.PTS-p.DTS, 0)
	return dts, dts + cts
}

func (rec *recorder) packet(p *media.Packet) {
	q := *p
	q.DTS, q.PTS = rec.timeline(p)
	if rec.cur != nil {
		changed := (p.Track.Kind == media.KindVideo && !sameTrack(p.Track, rec.video)) ||
			(p.Track.Kind == media.KindAudio && !sameTrack(p.Track, rec.audio))
		if _, isFLV := rec.cur.(*flvWriter); changed && !isFLV {
			rec.log.Info("dvr: track changed; starting a new file", "codec", p.Track.Codec)
			rec.closeFile(true)
		} else if rec.set.Plan == PlanSegment && q.DTS-rec.startDTS >= rec.set.Duration &&
			(p.IsVideoKey() || rec.video == nil) {
			rec.closeFile(true)
		}
	}
	if rec.cur == nil {
		rec.preroll(&q)
		return
	}
	rec.write(&q)
}

// preroll gathers the packets a new file starts with: from a video
// keyframe (when the stream has video), until both tracks are known (an
// encoder's first audio may come before its first video, or the other
// way round) or preRoll has passed.
func (rec *recorder) preroll(q *media.Packet) {
	if len(rec.pre) == 0 && !rec.failedAt.IsZero() && time.Since(rec.failedAt) < retryAfter {
		return
	}
	rec.pre = append(rec.pre, *q)
	key, hasVideo := -1, false
	for i := range rec.pre {
		if rec.pre[i].Track.Kind == media.KindVideo {
			hasVideo = true
			if key < 0 && rec.pre[i].Key {
				key = i
			}
		}
	}
	if hasVideo {
		if key < 0 {
			if q.DTS-rec.pre[0].DTS >= preRoll || len(rec.pre) > 4096 {
				clear(rec.pre)
				rec.pre = rec.pre[:0] // no keyframe yet: start over
			}
			return
		}
		if key > 0 {
			n := copy(rec.pre, rec.pre[key:])
			clear(rec.pre[n:])
			rec.pre = rec.pre[:n]
		}
	}
	var v, a *media.Track
	for i := range rec.pre {
		if rec.pre[i].Track.Kind == media.KindVideo {
			v = rec.pre[i].Track
		} else {
			a = rec.pre[i].Track
		}
	}
	meta := rec.st.Metadata()
	_, metaVideo := meta.Get("videocodecid")
	_, metaAudio := meta.Get("audiocodecid")
	ready := (v != nil || !metaVideo) && (a != nil || !metaAudio) && len(meta) > 0 ||
		v != nil && a != nil || q.DTS-rec.pre[0].DTS >= preRoll
	if !ready || (v == nil && a == nil) {
		return
	}
	pre := rec.pre
	rec.pre = nil
	if !rec.open(v, a, pre[0].DTS) {
		clear(pre)
		return
	}
	for i := range pre {
		if rec.cur == nil {
			break // a write failed
		}
		rec.write(&pre[i])
	}
	clear(pre)
}

func (rec *recorder) write(q *media.Packet) {
	q.DTS -= rec.startDTS
	q.PTS -= rec.startDTS
	if q.DTS < 0 {
		return // before the file's first keyframe
	}
	if err := rec.cur.write(q); err != nil {
		rec.fail(err)
		return
	}
	if !rec.direct && rec.cur.due() {
		rec.flush()
	}
}

// flush writes the current file's buffered fragment (never on the
// publisher's goroutine).
func (rec *recorder) flush() {
	if err := rec.cur.flush(); err != nil {
		rec.fail(err)
		return
	}
	rec.mu.Lock()
	rec.live.Duration = rec.cur.duration()
	rec.live.Bytes = rec.cur.size()
	rec.mu.Unlock()
}

// fail closes the current file after a write error; the next one starts
// after retryAfter.
func (rec *recorder) fail(err error) {
	rec.m.diskError(rec.key, err)
	rec.failedAt = time.Now()
	rec.closeFile(false)
}

// canDirect reports whether packet(p) only buffers in memory: a file is
// open, p's track is the file's, and no segment cut can be due.
func (rec *recorder) canDirect(p *media.Packet) bool {
	if rec.cur == nil || len(rec.pre) > 0 {
		return false
	}
	t := rec.audio
	if p.Track.Kind == media.KindVideo {
		t = rec.video
	}
	if !sameTrack(p.Track, t) {
		return false
	}
	return rec.set.Plan != PlanSegment || !(p.IsVideoKey() || rec.video == nil)
}

// open starts a file whose first packet is at startDTS; false when none
// can be started now.
func (rec *recorder) open(v, a *media.Track, startDTS time.Duration) bool {
	now := time.Now()
	if !rec.m.roomFor(rec.key, rec.set) {
		return false
	}
	final := rec.set.Template.Expand(rec.key, now)
	flvOut := rec.set.Template.Ext() == ".flv"
	if !flvOut && (!mp4Compatible(v) || !mp4Compatible(a)) {
		flvOut = true
		if !rec.noted {
			rec.noted = true
			codec := ""
			if !mp4Compatible(v) {
				codec = v.Codec.String()
			} else {
				codec = a.Codec.String()
			}
			rec.log.Warn("dvr: the stream carries "+codec+", which MP4 cannot hold; recording to FLV instead ("+rec.set.Setting+".path asks for .mp4)",
				"setting", rec.set.Setting+".path")
		}
	}
	if flvOut {
		final = strings.TrimSuffix(final, filepath.Ext(final)) + ".flv"
	}
	final = uniqueName(final)
	tmp := tempName(final)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		rec.m.diskError(rec.key, err)
		rec.failedAt = now
		return false
	}
	var (
		c   container
		err error
	)
	if flvOut {
		c, err = newFLVWriter(tmp, v, a, rec.st.Metadata())
	} else {
		c, err = newMP4Writer(tmp, v, a)
	}
	if err != nil {
		rec.m.diskError(rec.key, err)
		rec.failedAt = now
		return false
	}
	rec.failedAt = time.Time{}
	rec.cur, rec.tmp, rec.final = c, tmp, final
	rec.start, rec.startDTS = now, startDTS
	rec.video, rec.audio = v, a
	rec.mu.Lock()
	rec.live = Recording{
		ID: recordingID(final), Vhost: rec.key.Vhost, App: rec.key.App, Stream: rec.key.Name,
		File: final, Start: now, Recording: true,
	}
	rec.mu.Unlock()
	rec.log.Info("dvr: recording", "file", final)
	return true
}

// closeFile ends the current file in the background (a progressive
// rewrite takes a moment; the next file starts at once).
func (rec *recorder) closeFile(flush bool) {
	if rec.cur == nil {
		return
	}
	c, tmp, final := rec.cur, rec.tmp, rec.final
	live := rec.liveSnapshot()
	rec.cur = nil
	rec.mu.Lock()
	rec.live = Recording{}
	rec.mu.Unlock()
	rec.m.closing(live)
	rec.m.wg.Go(func() {
		_, err := c.finish(final, flush)
		switch {
		case errors.Is(err, errNoSamples):
			rec.m.done(live, false)
			return
		case err != nil:
			if _, serr := os.Stat(final); serr != nil {
				rec.log.Error("dvr: file could not be closed; left as "+tmp, "err", err)
				rec.m.failed()
				rec.m.done(live, false)
				return
			}
			rec.log.Warn("dvr: file kept as fragmented MP4", "file", final, "err", err)
		}
		live.Duration, live.Bytes, live.Recording = c.duration(), fileSize(final), false
		rec.m.done(live, true)
		rec.log.Info("dvr: recorded", "file", final, "duration", live.Duration.Round(time.Millisecond), "bytes", live.Bytes)
		rec.notify(final)
	})
}

func (rec *recorder) liveSnapshot() Recording {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.live
}

// notify posts on_dvr with SRS's body.
func (rec *recorder) notify(file string) {
	if len(rec.set.OnDVR) == 0 {
		return
	}
	ip := rec.info.Remote
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	cwd, _ := os.Getwd()
	ev := hooks.Event{
		Action: "on_dvr", ServerID: rec.m.opts.ServerID, ClientID: rec.info.Remote, IP: ip,
		Vhost: rec.key.Vhost, App: rec.key.App, Stream: rec.key.Name, Param: rec.info.Params,
		TcURL: "rtmp://" + rec.key.Vhost + "/" + rec.key.App,
		Extra: map[string]any{
			"cwd":        cwd,
			"file":       file,
			"stream_url": "/" + rec.key.App + "/" + rec.key.Name,
		},
	}
	rec.m.hooks.Notify(rec.set.OnDVR, ev)
}

// tempName is where a file is written before it is closed:
// NAME.tmp.EXT (a crash's leftover is found and finished at the next start).
func tempName(final string) string {
	ext := filepath.Ext(final)
	return strings.TrimSuffix(final, ext) + ".tmp" + ext
}

// uniqueName returns name, or name with -1, -2... when a file (or its
// temporary) already has it: a recording never overwrites another.
func uniqueName(name string) string {
	return freeName(name, true)
}

// freeName is uniqueName; withTemp false ignores temporaries (a crash's
// leftover being finished under its own name). Only a name that exists
// counts as taken: an unreachable directory is the caller's error to meet.
func freeName(name string, withTemp bool) string {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	cand := name
	for i := 1; i < 100000; i++ {
		_, e1 := os.Lstat(cand)
		taken := e1 == nil
		if withTemp && !taken {
			_, e2 := os.Lstat(tempName(cand))
			taken = e2 == nil
		}
		if !taken {
			return cand
		}
		cand = base + "-" + itoa(i) + ext
	}
	return cand
}

func fileSize(name string) int64 {
	st, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return st.Size()
}

// sameTrack reports whether a file made for b can take packets of a: the
// same codec and configuration (a publisher may resend its headers).
func sameTrack(a, b *media.Track) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Codec == b.Codec && bytes.Equal(a.Config, b.Config) &&
		a.SampleRate == b.SampleRate && a.Channels == b.Channels
}
