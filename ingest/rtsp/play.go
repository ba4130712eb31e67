package rtsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// trackWait is how long a play stream waits, after subscribing, for the
// second track of a stream that has only shown one so far.
const trackWait = 1500 * time.Millisecond

// playStream feeds one hub stream to every RTSP player of it: one hub
// reader, one gortsplib.ServerStream. It is made at the first DESCRIBE
// (or SETUP) and ends with the hub stream, or IdleClose after its last
// player left. Players of a stream whose codecs change are disconnected,
// so that they describe it again.
type playStream struct {
	srv *Server
	key stream.Key
	log *slog.Logger

	ready  chan struct{} // closed when stream is set, or err
	err    error
	stream *gortsplib.ServerStream
	medias map[media.Kind]*playTrack

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	players int
	idleAt  time.Time
}

type playTrack struct {
	medi  *description.Media
	track *media.Track
	pz    *packetizer
}

// playStream returns the ready play stream of key, making it if needed;
// it waits up to PlayWait for the hub stream and its tracks.
func (s *Server) playStream(key stream.Key) (*playStream, error) {
	s.mu.Lock()
	ps := s.plays[key]
	if ps == nil {
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return nil, stream.ErrHubClosed
		}
		ctx, cancel := context.WithCancel(s.ctx)
		ps = &playStream{srv: s, key: key, log: s.log.With("stream", key.String()),
			ready: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel,
			medias: map[media.Kind]*playTrack{}, idleAt: time.Now()}
		s.plays[key] = ps
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ps.run()
		}()
	}
	s.mu.Unlock()
	select {
	case <-ps.ready:
	case <-s.ctx.Done():
		return nil, stream.ErrHubClosed
	}
	if ps.err != nil {
		return nil, ps.err
	}
	return ps, nil
}

func (ps *playStream) close() { ps.cancel() }

func (ps *playStream) addPlayer() {
	ps.mu.Lock()
	ps.players++
	ps.mu.Unlock()
}

func (ps *playStream) removePlayer() {
	ps.mu.Lock()
	ps.players--
	if ps.players <= 0 {
		ps.players = 0
		ps.idleAt = time.Now()
	}
	ps.mu.Unlock()
}

func (ps *playStream) idle() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.players == 0 && time.Since(ps.idleAt) >= ps.srv.cfg.IdleClose
}

// run subscribes, describes, then writes until the hub stream ends, the
// codecs change, or no player is left.
func (ps *playStream) run() {
	s := ps.srv
	defer close(ps.done)
	defer ps.cancel()
	defer func() {
		s.mu.Lock()
		if s.plays[ps.key] == ps {
			delete(s.plays, ps.key)
		}
		s.mu.Unlock()
	}()
	fail := func(err error) {
		ps.err = err
		close(ps.ready)
	}
	r, err := s.hub.Subscribe(ps.ctx, ps.key, stream.ClientInfo{Protocol: Protocol, Remote: "rtsp players"}, s.cfg.PlayWait)
	if err != nil {
		fail(err)
		return
	}
	defer r.Close()

	// Collect packets until the tracks are known.
	var pending []media.Packet
	video, audio := r.Stream().Tracks()
	cctx, ccancel := context.WithTimeout(ps.ctx, trackWait)
	for video == nil || audio == nil {
		pending, err = r.ReadBatch(cctx, pending)
		for i := range pending {
			switch t := pending[i].Track; t.Kind {
			case media.KindVideo:
				video = t
			case media.KindAudio:
				audio = t
			}
		}
		if err != nil {
			if cctx.Err() != nil && ps.ctx.Err() == nil {
				break // go with the tracks seen so far
			}
			ccancel()
			fail(fmt.Errorf("play %s: %w", ps.key, err))
			return
		}
	}
	ccancel()
	if video == nil && audio == nil {
		fail(fmt.Errorf("play %s: no track within %s: %w", ps.key, trackWait, stream.ErrNotFound))
		return
	}
	desc := &description.Session{}
	pt := uint8(96)
	for _, t := range []*media.Track{video, audio} {
		if t == nil {
			continue
		}
		forma, err := formatFor(t, pt)
		var pz *packetizer
		if err == nil {
			pz, err = newPacketizer(t, forma)
		}
		if err != nil {
			ps.log.Info("rtsp play track skipped", "codec", t.Codec.String(), "reason", err.Error())
			continue
		}
		pt++
		m := mediaFor(t, forma)
		desc.Medias = append(desc.Medias, m)
		ps.medias[t.Kind] = &playTrack{medi: m, track: t, pz: pz}
	}
	if len(desc.Medias) == 0 {
		fail(fmt.Errorf("play %s: no track rtsp can carry: %w", ps.key, stream.ErrNotFound))
		return
	}
	ps.stream = &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := ps.stream.Initialize(); err != nil {
		fail(fmt.Errorf("play %s: %w", ps.key, err))
		return
	}
	defer ps.stream.Close()
	close(ps.ready)

	start := time.Now()
	if err := ps.write(start, pending); err != nil {
		ps.log.Info("rtsp play stream ended", "reason", err.Error())
		return
	}
	clear(pending)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := pending[:0]
	for {
		rctx, cancel := context.WithTimeout(ps.ctx, time.Second)
		batch, err = r.ReadBatch(rctx, batch[:0])
		cancel()
		if werr := ps.write(start, batch); werr != nil {
			ps.log.Info("rtsp play stream ended", "reason", werr.Error())
			return
		}
		clear(batch)
		switch {
		case errors.Is(err, io.EOF):
			ps.log.Debug("rtsp play stream ended", "reason", "unpublished")
			return
		case ps.ctx.Err() != nil:
			return
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			ps.log.Info("rtsp play stream ended", "reason", err.Error())
			return
		}
		if ps.idle() {
			ps.log.Debug("rtsp play stream ended", "reason", "no player")
			return
		}
	}
}

// errCodecChanged ends a play stream whose publisher changed codecs.
var errCodecChanged = errors.New("the publisher changed codecs: players must describe again")

// write sends packets to the players.
func (ps *playStream) write(start time.Time, pkts []media.Packet) error {
	for i := range pkts {
		p := &pkts[i]
		pt := ps.medias[p.Track.Kind]
		if pt == nil {
			continue
		}
		if p.Track != pt.track {
			if !sameFormat(p.Track, pt.track) {
				return errCodecChanged
			}
			pt.track = p.Track
		}
		rpkts, err := pt.pz.packets(p)
		if err != nil {
			continue // one bad access unit: skip it
		}
		ntp := ntpOf(start, p)
		for _, rp := range rpkts {
			if err := ps.stream.WritePacketRTPWithNTP(pt.medi, rp, ntp); err != nil {
				return fmt.Errorf("write rtp: %w", err)
			}
		}
	}
	return nil
}

// sameFormat reports whether b can be sent under the SDP made for a.
func sameFormat(a, b *media.Track) bool {
	if a.Codec != b.Codec {
		return false
	}
	if a.Kind == media.KindAudio {
		return a.SampleRate == b.SampleRate && a.Channels == b.Channels && a.SampleBits == b.SampleBits
	}
	return true
}
