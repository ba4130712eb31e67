package hls

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// hlsStream is one stream name's HLS output. It outlives a publish: a
// republish continues its playlist. At most one segmenter goroutine uses
// it at a time (the next one waits for the previous one to end).
type hlsStream struct {
	m    *Manager
	key  stream.Key
	set  Settings
	root string // the vhost's HLS directory
	dir  string // <root>/<app>/<stream>: segments, init files, state
	log  *slog.Logger

	// Guarded by Manager.mu.
	done     chan struct{} // closed when the current segmenter ends; nil: none ran
	live     bool
	liveSegs int // segments listed during the current publish
	dispose  *time.Timer

	// Owned by the running segmenter (or, when none runs, by whoever holds
	// Manager.mu): the playlist state.
	state    state
	loaded   bool
	info     stream.ClientInfo
	streamID uint64

	requests atomic.Uint64

	mu    sync.Mutex // guards stats
	stats StreamStats
}

func (s *hlsStream) playlistPath() string {
	return filepath.Join(s.root, s.key.App, s.key.Name+".m3u8")
}

// load reads the persisted state once, and drops listed segments whose
// files are gone (a wiped directory must not list 404s).
func (s *hlsStream) load() {
	if s.loaded {
		return
	}
	s.loaded = true
	st, _, err := loadState(s.dir)
	if err != nil {
		s.log.Warn("hls state unreadable; continuing from a fresh sequence", "err", err)
	}
	if st.Variant != "" && st.Variant != s.set.Variant {
		// MPEG-TS and fMP4 segments cannot share a playlist: keep the
		// counters, drop the old files.
		for _, seg := range append(st.Segments, st.Retired...) {
			_ = os.Remove(filepath.Join(s.dir, seg.Name))
			if seg.Init != "" {
				_ = os.Remove(filepath.Join(s.dir, seg.Init))
			}
		}
		st.Segments, st.Retired = nil, nil
		st.DiscSeq++
	}
	st.Variant = s.set.Variant
	keep := 0
	for i, seg := range st.Segments {
		if _, err := os.Stat(filepath.Join(s.dir, seg.Name)); err != nil {
			keep = i + 1
		}
	}
	for _, seg := range st.Segments[:keep] {
		if seg.Disc {
			st.DiscSeq++
		}
	}
	st.Segments = st.Segments[keep:]
	s.state = st
	s.updateStats(nil, 0)
}

// run is the segmenter goroutine of one publish.
func (s *hlsStream) run(ctx context.Context, r *stream.Reader, prev, done chan struct{}) {
	defer close(done)
	defer r.Close()
	if prev != nil {
		<-prev
	}
	s.load()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		s.m.diskError(s, err)
	}
	s.info, s.streamID = r.Stream().Publisher(), r.Stream().ID()
	meta, _ := r.Metadata()
	g := newSegmenter(s, meta)
	s.log.Info("hls started", "variant", s.set.Variant, "next_seq", s.state.NextSeq, "playlist", s.playlistPath())
	// While the segment is open, the frames that cannot end it (video
	// that is not a keyframe, audio beside video) are muxed into memory on
	// the publisher's goroutine: no wake-up of this one per frame. The
	// rest (keyframes, track changes) come through the queue to this
	// goroutine, which cuts, writes and lists the segment.
	r.SetDirect(func(p *media.Packet, _ media.Metadata, _ uint64) stream.DirectResult {
		if !g.canDirect(p) {
			return stream.DirectRefused
		}
		g.handle(p)
		return stream.DirectSent
	})
	var (
		batch []media.Packet
		err   error
	)
	for {
		batch, err = r.ReadBatch(ctx, batch[:0])
		if g.probing && len(batch) > 0 && !g.metaKnown {
			if m, _ := r.Metadata(); len(m) > 0 {
				g.readMetadata(m)
			}
		}
		for i := range batch {
			g.packet(&batch[i])
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
	g.finish()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, stream.ErrReaderClosed) && ctx.Err() == nil {
		s.log.Warn("hls stopped", "err", err)
	}
	s.log.Info("hls ended", "next_seq", s.state.NextSeq)
	s.m.ended(s, done)
}

// publish writes a finished segment, lists it, and tells on_hls.
func (s *hlsStream) publish(g *segmenter, data []byte, dur float64, wall time.Time, end int64) {
	m := s.m
	st := &s.state
	if g.initName != "" && !g.initWritten {
		if err := m.writeFile(filepath.Join(s.dir, g.initName), g.mux.initSegment()); err != nil {
			m.diskError(s, err)
			g.pendingDisc = true
			return
		}
		g.initWritten = true
	}
	seq := st.NextSeq
	name := uitoa(seq) + ".ts"
	if s.set.Variant == VariantFMP4 {
		name = uitoa(seq) + ".m4s"
	}
	file := filepath.Join(s.dir, name)
	if err := m.writeFile(file, data); err != nil {
		m.diskError(s, err)
		g.pendingDisc = true // the gap: players must resync after it
		return
	}
	st.NextSeq++
	st.NextTime = end
	st.Target = max(st.Target, int(math.Ceil(dur-0.0005)), int(math.Ceil(s.set.Fragment.Seconds())))
	remove := st.add(segment{
		Seq: seq, Name: name, Duration: dur, Disc: g.pendingDisc && seq > 0,
		Time: wall.UTC(), Init: g.initName, Size: int64(len(data)),
	}, s.set.Window, m.opts.Keep)
	g.pendingDisc = false
	plErr := s.writePlaylist()
	for _, f := range remove {
		if err := os.Remove(filepath.Join(s.dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("hls: remove old segment", "err", err)
		}
	}
	if err := st.save(s.dir, m.writeFile); err != nil && plErr == nil {
		m.diskError(s, err)
	}
	s.updateStats(nil, dur)
	m.segmentListed(s)
	s.notify(file, name, dur, seq)
}

func (s *hlsStream) writePlaylist() error {
	b, err := s.state.encode(s.key.Name, s.m.args(s.key.Vhost))
	if err == nil {
		err = s.m.writeFile(s.playlistPath(), b)
	}
	if err != nil {
		s.m.diskError(s, err)
	}
	return err
}

// notify calls the vhost's on_hls hooks with SRS's fields.
func (s *hlsStream) notify(file, name string, dur float64, seq uint64) {
	if len(s.set.OnHLS) == 0 {
		return
	}
	ip := s.info.Remote
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	cwd, _ := os.Getwd()
	segURL := s.key.App + "/" + s.key.Name + "/" + name
	ev := hooks.Event{
		Action: "on_hls", ServerID: s.m.opts.ServerID, ClientID: s.info.Remote, IP: ip,
		Vhost: s.key.Vhost, App: s.key.App, Stream: s.key.Name, Param: s.info.Params,
		TcURL: "rtmp://" + s.key.Vhost + "/" + s.key.App,
		Extra: map[string]any{
			"duration":   math.Round(dur*1000) / 1000,
			"cwd":        cwd,
			"file":       file,
			"url":        segURL,
			"m3u8":       s.playlistPath(),
			"m3u8_url":   s.key.App + "/" + s.key.Name + ".m3u8",
			"seq_no":     seq,
			"stream_url": "/" + s.key.App + "/" + s.key.Name,
			"stream_id":  strconv.FormatUint(s.streamID, 10),
		},
	}
	s.m.hooks.Notify(s.set.OnHLS, ev)
}

// updateStats refreshes the snapshot from the state (owner only).
func (s *hlsStream) updateStats(err error, dur float64) {
	st := &s.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if dur > 0 {
		s.stats.SegmentsWritten++
		s.stats.LastDuration = math.Round(dur*1000) / 1000
		s.stats.LastSegmentAt = time.Now()
	}
	if n := len(st.Segments); n > 0 {
		s.stats.Sequence = st.Segments[n-1].Seq
		s.stats.MediaSequence = st.Segments[0].Seq
	}
	s.stats.Listed = len(st.Segments)
	s.stats.DiscontinuitySequence = st.DiscSeq
	s.stats.TargetDuration = st.Target
	s.stats.BytesOnDisk = st.bytes()
	if err != nil {
		s.stats.WriteErrors++
		s.stats.LastError = err.Error()
	}
}

// removeFiles deletes the playlist, segments and init files, keeping only
// the state (so a later publish never reuses a segment name).
func (s *hlsStream) removeFiles() {
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if e.Name() == stateFile || e.IsDir() {
			continue
		}
		_ = os.Remove(filepath.Join(s.dir, e.Name()))
	}
	for _, seg := range s.state.Segments {
		if seg.Disc {
			s.state.DiscSeq++ // its discontinuity leaves with the file
		}
	}
	s.state.Segments, s.state.Retired = nil, nil
	if err := s.state.save(s.dir, s.m.writeFile); err != nil {
		s.log.Warn("hls: save state after dispose", "err", err)
	}
	_ = os.Remove(s.playlistPath())
	s.updateStats(nil, 0)
}
