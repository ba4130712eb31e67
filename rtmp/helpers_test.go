package rtmp

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/q191201771/naza/pkg/nazalog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// lalrtmp.Log is naza's global logger: silence it (and naza's own
	// buffer logs) before any session goroutine starts.
	if err := nazalog.Init(func(o *nazalog.Option) { o.Level = nazalog.LevelLogNothing }); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m)
}

// handshakeBytes is C0, a simple-mode C1 and a C2.
func handshakeBytes() []byte {
	b := make([]byte, 1+2*handshakeLen)
	b[0] = handshakeVersion
	return b
}

// basicHeader encodes fmt and csid in the shortest form, as the spec says.
func basicHeader(fmt uint8, csid uint32) []byte {
	switch {
	case csid < 64:
		return []byte{fmt<<6 | byte(csid)}
	case csid < 320:
		return []byte{fmt << 6, byte(csid - 64)}
	default:
		v := csid - 64
		return []byte{fmt<<6 | 1, byte(v), byte(v >> 8)}
	}
}

func put24(b []byte, v uint32) []byte {
	return append(b, byte(v>>16), byte(v>>8), byte(v))
}

func put32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(b, v)
}

// message encodes a message as ffmpeg does: a fmt 0 chunk, then fmt 3
// chunks, each carrying the extended timestamp when ts >= 0xFFFFFF.
func message(csid uint32, typ uint8, ts uint32, payload []byte, chunkSize int) []byte {
	var b []byte
	b = append(b, basicHeader(0, csid)...)
	b = put24(b, min(ts, extendedTS))
	b = put24(b, uint32(len(payload)))
	b = append(b, typ, 1, 0, 0, 0)
	if ts >= extendedTS {
		b = put32(b, ts)
	}
	for i := 0; ; {
		n := min(chunkSize, len(payload)-i)
		b = append(b, payload[i:i+n]...)
		i += n
		if i >= len(payload) {
			return b
		}
		b = append(b, basicHeader(3, csid)...)
		if ts >= extendedTS {
			b = put32(b, ts)
		}
	}
}

func amfStr(s string) []byte {
	b := []byte{amfString}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func amfNum(f float64) []byte {
	return binary.BigEndian.AppendUint64([]byte{amfNumber}, math.Float64bits(f))
}

func amfKey(k string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(k))), k...)
}

// amfObj encodes an object of pairs given as key, encoded value, ...
func amfObj(kv ...[]byte) []byte {
	b := []byte{amfObject}
	for _, p := range kv {
		b = append(b, p...)
	}
	return append(b, 0, 0, amfObjectEnd)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func setChunkSize(v uint32) []byte {
	return message(2, 1, 0, put32(nil, v), 128)
}

func connectCmd() []byte {
	return cat(amfStr("connect"), amfNum(1), amfObj(
		amfKey("app"), amfStr("live"),
		amfKey("tcUrl"), amfStr("rtmp://127.0.0.1/live"),
		amfKey("objectEncoding"), amfNum(0)))
}

func publishCmd() []byte {
	return cat(amfStr("publish"), amfNum(3), []byte{amfNull}, amfStr("s1"), amfStr("live"))
}

// publishSession is what an encoder sends up to and including publish.
func publishSession() []byte {
	return cat(
		handshakeBytes(),
		setChunkSize(4096),
		message(3, 20, 0, connectCmd(), 4096),
		message(3, 20, 0, cat(amfStr("createStream"), amfNum(2), []byte{amfNull}), 4096),
		message(8, 20, 0, publishCmd(), 4096),
	)
}

// nestedConnect is the stack-overflow attack: a connect whose object nests
// depth objects deep.
func nestedConnect(depth int) []byte {
	b := cat(amfStr("connect"), amfNum(1))
	b = append(b, make([]byte, 0, depth*4)...)
	for range depth {
		b = append(b, amfObject, 0, 1, 'a')
	}
	return append(b, amfNull) // never reached by the guard
}
