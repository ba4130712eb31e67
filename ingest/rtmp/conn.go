package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// conn is one RTMP connection: a publisher or a player. lal calls its
// observer methods from the connection's read goroutine (run).
type conn struct {
	srv   *Server
	nc    net.Conn
	guard *rtmpproto.GuardConn
	gate  *gateConn
	sess  *lalrtmp.ServerSession
	log   *slog.Logger
	start time.Time
	ctx   context.Context

	id    string
	tcURL string
	role  string // "publish" or "play", once accepted
	key   stream.Key

	// admitted is the request access allowed to admittedRole ("": none
	// yet); run tells access of its end exactly once. denied is why access
	// refused the session.
	admitted     access.Request
	admittedRole string
	denied       error

	// publisher
	pub      *stream.Publisher
	demux    flv.Demuxer
	bad      int
	firstBad error

	// player
	playDuration time.Duration // asked for in the play command (0: none)
	noWait       bool          // not found at once when not live (noWaitParam)
	playCancel   context.CancelFunc
	playDone     chan struct{}
	playErr      error

	closeOnce sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	id := strconv.FormatUint(s.ids.Add(1), 10)
	c := &conn{
		srv:   s,
		nc:    nc,
		guard: rtmpproto.NewGuardConn(newBufConn(nc), s.cfg.Limits),
		log:   s.log.With("remote", nc.RemoteAddr().String(), "client_id", id),
		start: time.Now(),
		id:    id,
	}
	c.guard.OnCommand(c.command)
	c.gate = &gateConn{GuardConn: c.guard}
	c.sess = lalrtmp.NewServerSession(c, c.gate)
	reuseReadBuffers(c.sess)
	return c
}

func (c *conn) close() {
	c.closeOnce.Do(func() { _ = c.nc.Close() })
}

func (c *conn) run(ctx context.Context) {
	c.ctx = ctx
	err := c.runLoop()
	c.close()
	if c.pub != nil {
		c.pub.Close()
	}
	if c.playCancel != nil {
		c.playCancel()
		<-c.playDone
		if c.playErr != nil {
			err = c.playErr
		}
	}
	switch c.admittedRole {
	case "publish":
		c.srv.cfg.Access.Unpublished(c.admitted)
	case "play":
		c.srv.cfg.Access.Stopped(c.admitted)
	}
	c.logEnd(err)
}

// runLoop runs lal's session; a panic in lal's message handling (a bug the
// guard did not foresee) ends this connection only.
func (c *conn) runLoop() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("protocol handler panic: %v", r)
		}
	}()
	return c.sess.RunLoop()
}

// logEnd writes the connection's one closing line.
func (c *conn) logEnd(err error) {
	d := time.Since(c.start).Round(time.Millisecond)
	if v := c.guard.Violation(); v != nil {
		c.log.Warn("rtmp connection rejected", "reason", v.Error(), "after", d)
		return
	}
	if c.denied != nil {
		// Error() names the rule or the (redacted) hook, never a secret.
		c.log.Warn("rtmp access denied", "stream", c.key.String(), "reason", c.denied.Error(), "after", d)
		return
	}
	if c.role == "" {
		c.log.Info("rtmp connection closed", "reason", reason(err), "after", d)
		return
	}
	attrs := []any{"stream", c.key.String(), "duration", d, "reason", reason(err)}
	if c.bad > 0 {
		attrs = append(attrs, "bad_packets", c.bad, "first_bad", c.firstBad.Error())
	}
	c.log.Info("rtmp "+c.role+" ended", attrs...)
}

func reason(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return err.Error()
}

// request parses and resolves the publish/play URL of the session. A
// play of STREAM.flv (.m3u8, .ts) names STREAM, as in SRS.
func (c *conn) request(s *lalrtmp.ServerSession, play bool) (streamurl.Request, stream.Key, error) {
	name := s.StreamName()
	if play {
		name = streamurl.PlayName(name)
	}
	if q := s.RawQuery(); q != "" {
		name += "?" + q
	}
	req, err := streamurl.Parse(c.tcURL, s.AppName(), name)
	if err != nil {
		return req, stream.Key{}, err
	}
	vhost, err := req.ResolveVhost(c.srv.cfg.Vhost)
	if err != nil {
		return req, stream.Key{}, err
	}
	return req, stream.Key{Vhost: vhost, App: req.App, Name: req.Stream}, nil
}

// admit asks access whether the session may publish or play key; on a
// refusal it tells the client why (no secrets, no hook address) and
// returns the error for lal to close the connection. It runs on the
// connection's goroutine: a slow hook holds up this client only.
func (c *conn) admit(role string, req streamurl.Request, key stream.Key) error {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		host = c.nc.RemoteAddr().String()
	}
	ar := access.Request{
		Protocol: "rtmp", ClientID: c.id, IP: host,
		Vhost: key.Vhost, App: key.App, Stream: key.Name,
		Param: req.Params.Encode(), TcURL: c.tcURL,
	}
	check, code := c.srv.cfg.Access.Publish, "NetStream.Publish.Rejected"
	if role == "play" {
		check, code = c.srv.cfg.Access.Play, "NetStream.Play.Rejected"
	}
	if err := check(c.ctx, ar); err != nil {
		c.key, c.denied = key, err
		c.writeStatus("error", code, access.ClientMessage(err))
		return fmt.Errorf("%s: %w", role, err)
	}
	c.admitted, c.admittedRole = ar, role
	return nil
}

// OnRtmpConnect implements lalrtmp.IServerSessionObserver.
func (c *conn) OnRtmpConnect(_ *lalrtmp.ServerSession, opa lalrtmp.ObjectPairArray) {
	c.tcURL, _ = opa.FindString("tcUrl")
}

// OnNewRtmpPubSession implements lalrtmp.IServerSessionObserver.
func (c *conn) OnNewRtmpPubSession(s *lalrtmp.ServerSession) error {
	if c.role != "" {
		// lal calls us again for a second publish/play on one connection.
		return fmt.Errorf("publish on a connection that already did %s", c.role)
	}
	req, key, err := c.request(s, false)
	if err != nil {
		c.writeStatus("error", "NetStream.Publish.BadName", err.Error())
		return fmt.Errorf("publish: %w", err)
	}
	hops := forwardHops(&req)
	if err := c.admit("publish", req, key); err != nil {
		return err
	}
	pub, err := c.publish(key, stream.ClientInfo{
		Protocol:  "rtmp",
		Remote:    c.nc.RemoteAddr().String(),
		Params:    req.Redacted(),
		Forwarded: hops,
		Kick:      c.close,
	})
	if err != nil {
		c.writeStatus("error", "NetStream.Publish.BadName", err.Error())
		return fmt.Errorf("publish: %w", err)
	}
	c.role, c.key, c.pub = "publish", key, pub
	c.guard.Established()
	s.SetPubSessionObserver(c)
	c.log.Info("rtmp publish", "stream", key.String(), "params", req.Redacted(), "forward_hops", hops)
	return nil
}

// OnReadRtmpAvMsg implements lalrtmp.IPubSessionObserver. msg.Payload is
// lal's buffer, reused after we return: the demuxer copies what it keeps.
func (c *conn) OnReadRtmpAvMsg(msg base.RtmpMsg) {
	var (
		pkt media.Packet
		ok  bool
		err error
	)
	switch msg.Header.MsgTypeId {
	case base.RtmpTypeIdAudio:
		pkt, ok, err = c.demux.Audio(msg.Header.TimestampAbs, msg.Payload)
	case base.RtmpTypeIdVideo:
		pkt, ok, err = c.demux.Video(msg.Header.TimestampAbs, msg.Payload)
	case base.RtmpTypeIdMetadata:
		var m media.Metadata
		if m, err = flv.ParseMetadata(msg.Payload); err == nil {
			c.pub.WriteMetadata(m)
		}
	}
	if err != nil {
		c.bad++
		if c.firstBad == nil {
			c.firstBad = err
		}
		return
	}
	if ok {
		c.pub.WritePacket(pkt)
	}
}

// OnNewRtmpSubSession implements lalrtmp.IServerSessionObserver.
func (c *conn) OnNewRtmpSubSession(s *lalrtmp.ServerSession) error {
	if c.role != "" {
		return fmt.Errorf("play on a connection that already did %s", c.role)
	}
	req, key, err := c.request(s, true)
	if err != nil {
		c.writeStatus("error", "NetStream.Play.StreamNotFound", err.Error())
		return fmt.Errorf("play: %w", err)
	}
	noWait := takeNoWait(&req)
	if err := c.admit("play", req, key); err != nil {
		return err
	}
	c.role, c.key, c.noWait = "play", key, noWait
	c.guard.Established()
	ctx, cancel := context.WithCancel(c.ctx)
	c.playCancel, c.playDone = cancel, make(chan struct{})
	go c.play(ctx, req, key)
	return nil
}

// play sends the stream to the player until either side ends. Writes go
// to the socket (see rtmpproto.Sink), not through lal's write channel: the hub's
// per-reader queue is the one buffer, so a slow player drops whole GOPs
// there instead of lagging.
func (c *conn) play(ctx context.Context, req streamurl.Request, key stream.Key) {
	defer close(c.playDone)
	wait := c.srv.cfg.PlayWait
	if c.noWait {
		wait = 0
	}
	r, err := c.srv.hub.Subscribe(ctx, key, stream.ClientInfo{
		Protocol: "rtmp",
		Remote:   c.nc.RemoteAddr().String(),
		Params:   req.Redacted(),
		Kick:     c.close,
	}, wait)
	if err != nil {
		if ctx.Err() == nil {
			c.playErr = err
			c.writeStatus("error", "NetStream.Play.StreamNotFound", err.Error())
		}
		c.close()
		return
	}
	defer r.Close()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(c.srv.cfg.NoDelay != nil && c.srv.cfg.NoDelay(key.Vhost))
	}
	sink := rtmpproto.NewSink(c.nc, c.srv.cfg.WriteTimeout, false)
	c.gate.sink.Store(sink)
	_ = c.nc.SetWriteDeadline(time.Time{}) // drop lal's: the sink sets its own
	// A play with a duration counts what it sends, so it takes every
	// packet here; the others take the direct path too.
	var clock *playClock
	if c.playDuration > 0 {
		clock = &playClock{}
	} else {
		sink.Attach(r)
	}

	var batch []media.Packet
	for {
		batch, err = r.ReadBatch(ctx, batch[:0])
		send, reached := batch, false
		if clock != nil {
			send, reached = clock.take(batch, c.playDuration)
		}
		m, ver := r.Metadata()
		werr := sink.WriteBatch(send, m, ver)
		clear(batch) // let the payloads go
		r.Done()
		if werr != nil {
			c.playErr = fmt.Errorf("write to player: %w", werr)
			c.close()
			return
		}
		if reached {
			c.playErr = errPlayDuration
			c.writeStatus("status", "NetStream.Play.Stop", "play duration reached")
			c.close()
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.writeStatus("status", "NetStream.Play.UnpublishNotify", "stream ended")
			}
			c.close()
			return
		}
	}
}

// write sends b in order with everything else written on the socket.
func (c *conn) write(b []byte) error {
	if s := c.gate.sink.Load(); s != nil {
		_, err := s.Control(b)
		return err
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(b)
	return err
}

// writeStatus sends an onStatus command (best effort: the connection is
// usually about to close).
func (c *conn) writeStatus(level, code, desc string) {
	var b bytes.Buffer
	_ = lalrtmp.Amf0.WriteString(&b, "onStatus")
	_ = lalrtmp.Amf0.WriteNumber(&b, 0)
	_ = lalrtmp.Amf0.WriteNull(&b)
	_ = lalrtmp.Amf0.WriteObject(&b, lalrtmp.ObjectPairArray{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: desc},
	})
	msg := rtmpproto.AppendMessage(nil, rtmpproto.CsidData, base.RtmpTypeIdCommandMessageAmf0, 0,
		rtmpproto.ChunkSize, nil, b.Bytes())
	_ = c.write(msg)
}

// hopsParam marks a push from another Podium's forward with the number of
// forward hops the stream made (forward.HopsParam: the names must match).
const hopsParam = "podium_hops"

// forwardHops takes the hop count out of req's params (0 when absent or
// not a small number), so it reaches neither stats nor hooks.
func forwardHops(req *streamurl.Request) int {
	v := req.Params.Get(hopsParam)
	req.Params.Del(hopsParam)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 64 {
		return 0
	}
	return n
}
