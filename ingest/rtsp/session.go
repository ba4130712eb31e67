package rtsp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

const (
	rolePublish = "publish"
	rolePlay    = "play"
)

// badLimit closes a publishing session whose packets keep failing: this
// many bad packets (undecodable, oversized, or lost over a reliable TCP
// link) within badWindow.
const (
	badLimit  = 200
	badWindow = 10 * time.Second
)

// session is one RTSP session of the server: a publisher or a player.
type session struct {
	srv    *Server
	ss     *gortsplib.ServerSession
	remote string
	start  time.Time

	mu        sync.Mutex
	role      string
	key       stream.Key
	params    string
	areq      access.Request
	pub       *stream.Publisher
	deps      []*depacketizer
	play      *playStream
	playing   bool
	nbad      uint64
	nlost     uint64
	firstBad  string
	winStart  time.Time
	winBad    int
	closeWhy  string
	published bool
	ended     bool
}

// connFailed gives the session the error its connection ended with, if
// the session has not logged its end yet (then it logs it instead of the
// connection); false if it has.
func (ss *session) connFailed(err error) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return false
	}
	if ss.closeWhy == "" {
		ss.closeWhy = err.Error()
	}
	return true
}

// announce handles ANNOUNCE: validate the name, ask the guard, publish
// into the hub, and prepare a depacketizer per supported format.
func (ss *session) announce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s := ss.srv
	req, key, err := resolve(ctx.Path, ctx.Query, s.host(ctx.Request), s.cfg.Vhost)
	if err != nil {
		ss.setWhy(fmt.Sprintf("announce: %v", err))
		return &base.Response{StatusCode: status(err)}, nil
	}
	areq := accessRequest(ctx.Conn, ctx.Request, key, rawQuery(req))
	gctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	err = s.cfg.Guard.Publish(gctx, areq)
	cancel()
	if err != nil {
		ss.setWhy(fmt.Sprintf("publish denied: %v", err))
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	tl := newTimeline(nil)
	var deps []*depacketizer
	for _, medi := range ctx.Description.Medias {
		for _, forma := range medi.Formats {
			d, err := newDepacketizer(medi, forma, tl)
			if err != nil {
				s.log.Info("rtsp track skipped", "remote", ss.remote, "stream", key.String(),
					"codec", forma.Codec(), "reason", err.Error())
				continue
			}
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		s.cfg.Guard.Unpublished(areq)
		ss.setWhy("announce: no supported track")
		return &base.Response{StatusCode: base.StatusUnsupportedMediaType}, nil
	}
	pub, err := s.hub.Publish(key, stream.ClientInfo{
		Protocol: Protocol, Remote: ss.remote, Params: req.Redacted(), Kick: ss.ss.Close,
	})
	if err != nil {
		s.cfg.Guard.Unpublished(areq)
		ss.setWhy(fmt.Sprintf("publish: %v", err))
		return &base.Response{StatusCode: status(err)}, nil
	}
	ss.mu.Lock()
	ss.role, ss.key, ss.params, ss.areq, ss.pub, ss.deps = rolePublish, key, req.Redacted(), areq, pub, deps
	ss.published = true
	ss.mu.Unlock()
	s.log.Info("rtsp publish", "remote", ss.remote, "stream", key.String(), "params", req.Redacted(),
		"tracks", len(deps))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (ss *session) setWhy(why string) {
	ss.mu.Lock()
	if ss.closeWhy == "" {
		ss.closeWhy = why
	}
	ss.mu.Unlock()
}

// record starts taking the publisher's packets.
func (ss *session) record() {
	for _, d := range ss.deps {
		d := d
		ss.ss.OnPacketRTP(d.medi, d.forma, func(pkt *rtp.Packet) {
			ntp, ok := ss.ss.PacketNTP(d.medi, pkt)
			if err := d.handle(pkt, ntp, ok, ss.write); err != nil {
				ss.bad(err)
			}
		})
	}
}

// write hands one packet to the hub. gortsplib may call the packet
// callbacks of different tracks from different goroutines; the hub wants
// one writer at a time.
func (ss *session) write(p media.Packet) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pub != nil {
		ss.pub.WritePacket(p)
	}
}

// bad counts a packet that did not decode; too many close the session.
func (ss *session) bad(err error) {
	ss.srv.badPackets.Add(1)
	ss.mu.Lock()
	ss.nbad++
	if ss.firstBad == "" {
		ss.firstBad = err.Error()
	}
	over := ss.countLocked(1)
	ss.mu.Unlock()
	if over {
		ss.ss.Close()
	}
}

// lost counts lost RTP packets. Over TCP nothing can be lost, so a gap is
// the sender's own (a sequence jump) and counts as bad input.
func (ss *session) lost(n uint64) {
	ss.srv.badPackets.Add(n)
	ss.mu.Lock()
	ss.nlost += n
	over := false
	if t := ss.ss.SetuppedTransport(); t != nil && *t == gortsplib.TransportTCP {
		if ss.firstBad == "" {
			ss.firstBad = fmt.Sprintf("rtp sequence jump: %d packets missing over tcp", n)
		}
		over = ss.countLocked(int(min(n, badLimit)))
	}
	ss.mu.Unlock()
	if over {
		ss.ss.Close()
	}
}

func (ss *session) countLocked(n int) bool {
	now := time.Now()
	if now.Sub(ss.winStart) > badWindow {
		ss.winStart, ss.winBad = now, 0
	}
	ss.winBad += n
	if ss.winBad >= badLimit && ss.closeWhy == "" {
		ss.closeWhy = fmt.Sprintf("%d bad rtp packets within %s (first: %s)", ss.winBad, badWindow, ss.firstBad)
		return true
	}
	return false
}

// setPlay makes the session a player of ps (at SETUP).
func (ss *session) setPlay(ps *playStream, key stream.Key, areq access.Request, params string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.play == ps {
		return
	}
	ss.role, ss.key, ss.areq, ss.params, ss.play = rolePlay, key, areq, params, ps
}

// startPlay counts the session as a player of its stream (at PLAY).
func (ss *session) startPlay() {
	ss.mu.Lock()
	ps, first := ss.play, !ss.playing
	ss.playing = true
	ss.mu.Unlock()
	if first && ps != nil {
		ps.addPlayer()
		ss.srv.log.Info("rtsp play", "remote", ss.remote, "stream", ss.key.String(), "params", ss.params)
	}
}

// end is the session's one closing line, after which its publisher
// unpublishes or its player leaves.
func (ss *session) end(err error) {
	s := ss.srv
	ss.mu.Lock()
	pub, ps, playing, role := ss.pub, ss.play, ss.playing, ss.role
	ss.pub = nil
	ss.ended = true
	why, nbad, nlost, firstBad := ss.closeWhy, ss.nbad, ss.nlost, ss.firstBad
	ss.mu.Unlock()
	if pub != nil {
		pub.Close()
		s.cfg.Guard.Unpublished(ss.areq)
	}
	if ps != nil && playing {
		ps.removePlayer()
		s.cfg.Guard.Stopped(ss.areq)
	}
	d := time.Since(ss.start).Round(time.Millisecond)
	log := s.log.With("remote", ss.remote)
	r := reason(err)
	if why != "" {
		r = why
	}
	switch {
	case role == "":
		if why != "" || !benign(err) {
			s.rejected.Add(1)
			log.Warn("rtsp session rejected", "reason", r, "after", d)
		} else {
			log.Debug("rtsp session closed", "reason", r, "after", d)
		}
	default:
		attrs := []any{"stream", ss.key.String(), "duration", d, "reason", r}
		if nbad > 0 || nlost > 0 {
			attrs = append(attrs, "bad_packets", nbad, "lost_packets", nlost)
			if firstBad != "" {
				attrs = append(attrs, "first_bad", firstBad)
			}
		}
		if why != "" {
			s.rejected.Add(1)
			log.Warn("rtsp "+role+" ended", attrs...)
			return
		}
		log.Info("rtsp "+role+" ended", attrs...)
	}
}

// mediaFor is the description of one media of a play stream.
func mediaFor(t *media.Track, forma format.Format) *description.Media {
	typ := description.MediaTypeAudio
	if t.Kind == media.KindVideo {
		typ = description.MediaTypeVideo
	}
	return &description.Media{Type: typ, Formats: []format.Format{forma}}
}
