package httpflv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// trackWait is how long a play of a stream that has shown one track so far
// waits for the other before it writes the FLV header (whose flags players
// such as mpegts.js believe).
const trackWait = time.Second

// writeChunk bounds one write, so that the write timeout measures progress
// (a slow but live player still takes 64 KiB within it).
const writeChunk = 64 << 10

// play is one HTTP-FLV player: admitted, subscribed, then written until
// the stream or the player ends.
type play struct {
	srv   *Server
	w     http.ResponseWriter
	r     *http.Request
	req   streamurl.Request
	key   stream.Key
	tcURL string
	id    string
	start time.Time
	bytes uint64
}

func (p *play) run() {
	s := p.srv
	log := s.log.With("remote", p.r.RemoteAddr, "client_id", p.id, "stream", p.key.String())
	// The request's context ends when the player goes (net/http watches
	// the connection); the server's at shutdown; cancel on a kick.
	ctx, cancel := context.WithCancel(p.r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	ar := access.Request{
		Protocol: Protocol, ClientID: p.id, IP: clientIP(p.r),
		Vhost: p.key.Vhost, App: p.key.App, Stream: p.key.Name,
		Param: p.req.Params.Encode(), TcURL: p.tcURL,
	}
	if err := s.cfg.Access.Play(ctx, ar); err != nil {
		// Error() names the rule or the (redacted) hook, never a secret.
		log.Warn("flv access denied", "reason", err.Error())
		http.Error(p.w, access.ClientMessage(err), http.StatusForbidden)
		return
	}
	defer s.cfg.Access.Stopped(ar)

	rd, err := s.hub.Subscribe(ctx, p.key, stream.ClientInfo{
		Protocol: Protocol,
		Remote:   p.r.RemoteAddr,
		Params:   p.req.Redacted(),
		Kick:     cancel,
	}, s.cfg.PlayWait)
	if err != nil {
		if ctx.Err() == nil {
			log.Info("flv play: no stream", "reason", err.Error())
			http.Error(p.w, "stream not found", status(err))
		}
		return
	}
	defer rd.Close()
	err = p.stream(ctx, rd)
	log.Info("flv play ended", "duration", time.Since(p.start).Round(time.Millisecond),
		"bytes", p.bytes, "reason", p.reason(err))
}

// reason says why a play that started ended, for its log line.
func (p *play) reason(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "stream ended"
	case p.srv.ctx.Err() != nil:
		return "shutdown"
	case errors.Is(err, context.Canceled), errors.Is(err, stream.ErrReaderClosed):
		return "closed"
	}
	return err.Error()
}

// stream writes the FLV header, onMetaData and the sequence headers, then
// every batch the reader gives, until an error (io.EOF: unpublished).
func (p *play) stream(ctx context.Context, rd *stream.Reader) error {
	batch, video, audio, err := prime(ctx, rd)
	if err == nil && len(batch) == 0 {
		// The first packet's time is the sequence headers' (the GOP
		// cache hands it over at once; a stream without one sends its
		// next packet soon, or the headers go at time 0).
		wctx, cancel := context.WithTimeout(ctx, trackWait)
		batch, err = rd.ReadBatch(wctx, batch)
		cancel()
		if wctx.Err() != nil && ctx.Err() == nil {
			err = nil
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	h := p.w.Header()
	h.Set("Content-Type", "video/x-flv")
	h.Set("Cache-Control", "no-cache")
	p.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(p.w)
	// A write blocked on a stalled player ends at once on a kick or at
	// shutdown, not after the write timeout.
	unblock := context.AfterFunc(ctx, func() { _ = rc.SetWriteDeadline(time.Now()) })
	defer unblock()

	var tw flv.TagWriter
	buf := flv.AppendHeader(nil, video != nil, audio != nil)
	if m, ver := rd.Metadata(); m != nil {
		buf = tw.AppendMetadata(buf, m, ver)
	} else {
		buf = flv.AppendTag(buf, flv.TagScript, 0, nil, flv.MetadataBody(flv.TrackMetadata(video, audio), false))
	}
	var ts time.Duration
	if len(batch) > 0 {
		ts = batch[0].DTS
	}
	for _, t := range []*media.Track{video, audio} {
		if t != nil {
			buf = tw.AppendConfig(buf, &media.Packet{Track: t, DTS: ts})
		}
	}
	// Merged writes: wake up and write once per MergeWait, not per packet
	// (as SRS's mw_sleep): a player costs a fraction of the CPU.
	var merge *time.Timer
	if p.srv.cfg.MergeWait > 0 {
		merge = time.NewTimer(p.srv.cfg.MergeWait)
		defer merge.Stop()
	}
	for {
		m, ver := rd.Metadata()
		buf = tw.AppendMetadata(buf, m, ver)
		for i := range batch {
			buf = tw.AppendPacket(buf, &batch[i])
		}
		clear(batch) // let the payloads go
		if werr := p.write(ctx, rc, buf); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
		buf = buf[:0]
		if cap(buf) > 256<<10 {
			buf = nil // a GOP-cache burst: don't keep it for the whole play
		}
		if merge != nil {
			merge.Reset(p.srv.cfg.MergeWait)
			select {
			case <-merge.C:
			case <-ctx.Done():
			}
		}
		batch, err = rd.ReadBatch(ctx, batch[:0])
	}
}

// prime returns the tracks for the FLV header: the stream's, or, while it
// has shown only one (it has just started), what the first packets show
// within trackWait. The packets it read are returned to be written.
func prime(ctx context.Context, rd *stream.Reader) (batch []media.Packet, video, audio *media.Track, err error) {
	video, audio = rd.Stream().Tracks()
	if video != nil && audio != nil {
		return nil, video, audio, nil
	}
	wctx, cancel := context.WithTimeout(ctx, trackWait)
	defer cancel()
	for video == nil || audio == nil {
		n := len(batch)
		batch, err = rd.ReadBatch(wctx, batch)
		for i := n; i < len(batch); i++ {
			switch t := batch[i].Track; t.Kind {
			case media.KindVideo:
				video = t
			case media.KindAudio:
				audio = t
			}
		}
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				err = nil // waited enough: go with the tracks seen
			}
			break
		}
	}
	return batch, video, audio, err
}

// write sends b and flushes it to the player; each piece must be taken
// within the write timeout.
func (p *play) write(ctx context.Context, rc *http.ResponseController, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err // the player left, was kicked, or the server stops
	}
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		_ = rc.SetWriteDeadline(time.Now().Add(p.srv.cfg.WriteTimeout))
		if err := ctx.Err(); err != nil {
			return err // after the deadline: ctx's AfterFunc may have set its own before
		}
		k, err := p.w.Write(b[:n])
		p.bytes += uint64(k)
		if err != nil {
			return fmt.Errorf("write to player: %w", err)
		}
		b = b[n:]
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("write to player: %w", err)
	}
	return nil
}
