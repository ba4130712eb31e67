package rtmp

import (
	"reflect"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
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
