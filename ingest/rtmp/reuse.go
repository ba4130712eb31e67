package rtmp

import (
	"reflect"
	"unsafe"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/connection"
)

// reuseReadBuffers makes s's chunk composer reuse one message buffer per
// chunk stream instead of allocating a new one (rounded up to a power of
// two) for every message. lal v0.37.4 has the switch
// (ChunkComposer.SetReuseBufferFlag, on by default in its own pull client)
// but no ServerSession option for it, so the composer is reached through
// reflection; go.mod pins lal, and TestReuseReadBuffers fails if a new
// version moves the field. Safe because every consumer of a message's
// payload copies what it keeps (see OnReadRtmpAvMsg). The per-message
// allocation was ~15% of Podium's user CPU in bench/relay.
func reuseReadBuffers(s *lalrtmp.ServerSession) bool {
	f := reflect.ValueOf(s).Elem().FieldByName("chunkComposer")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*lalrtmp.ChunkComposer]() || f.IsNil() {
		return false
	}
	(*lalrtmp.ChunkComposer)(f.UnsafePointer()).SetReuseBufferFlag(true)
	return true
}

// playConn is lal's connection for a session, less the asynchronous write
// queue lal gives it once it plays (ModWriteChanSize: a 1024-message
// channel, ~56 KB, and a goroutine per player). A player's media goes
// through rtmpproto.Sink, straight to the socket; lal writes only its few
// control messages, which then go synchronously through gateConn to the
// sink, in order with the media, bounded by the sink's write timeout.
// Publishers keep lal's queue: their control writes (acks) must never
// block the read loop.
type playConn struct {
	connection.Connection
	sess *lalrtmp.ServerSession
}

func (c *playConn) ModWriteChanSize(n int) {
	if c.sess.GetStat().BaseType == base.SessionBaseTypeSubStr {
		return
	}
	c.Connection.ModWriteChanSize(n)
}

// noPlayWriteQueue wraps s's connection in a playConn. lal v0.37.4 has no
// option for it, so the field is reached by reflection, as in
// reuseReadBuffers (TestNoPlayWriteQueue fails if lal moves it).
func noPlayWriteQueue(s *lalrtmp.ServerSession) bool {
	f := reflect.ValueOf(s).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[connection.Connection]() || f.IsNil() {
		return false
	}
	p := (*connection.Connection)(unsafe.Pointer(f.UnsafeAddr()))
	*p = &playConn{Connection: *p, sess: s}
	return true
}
