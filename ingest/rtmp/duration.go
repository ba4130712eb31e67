package rtmp

import (
	"bytes"
	"errors"
	"time"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
)

// errPlayDuration ends a play whose client asked for a duration (librtmp's
// `rtmpdump -B`) once it has been sent that much.
var errPlayDuration = errors.New("play duration reached")

// playCommand is the start of an AMF0 "play" command body: the string
// marker, the length 4, the name.
var playCommand = []byte{0x02, 0x00, 0x04, 'p', 'l', 'a', 'y'}

// command sees every command the client sends (lal reads the play
// command's stream name but not its start and duration): it keeps the
// duration of a play. It runs on the connection's read goroutine, before
// lal handles the command.
func (c *conn) command(body []byte) {
	if !bytes.HasPrefix(body, playCommand) {
		return
	}
	cmd, err := flv.ParseCommand(body)
	// play(txid, null, name, start, duration, reset): Args from the null.
	if err != nil || cmd.Name != "play" {
		return
	}
	if c.redirectPlay(cmd) || len(cmd.Args) < 4 {
		return
	}
	if ms, ok := cmd.Args[3].(float64); ok && ms > 0 && ms < float64(1<<53) {
		c.playDuration = time.Duration(ms) * time.Millisecond
	}
}

// playClock is the media time a player has been sent, counted as SRS
// counts it for a play duration: the forward steps of the message
// timestamps, every track together (a step back counts nothing).
type playClock struct {
	last    time.Duration
	started bool
	elapsed time.Duration
}

// take returns the part of batch that fits in limit, and whether the limit
// is reached with it.
func (pc *playClock) take(batch []media.Packet, limit time.Duration) ([]media.Packet, bool) {
	for i := range batch {
		d := batch[i].DTS
		if pc.started && d > pc.last {
			pc.elapsed += d - pc.last
		}
		pc.last, pc.started = d, true
		if pc.elapsed >= limit {
			return batch[:i+1], true
		}
	}
	return batch, false
}
