package proc

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"sync/atomic"
	"time"
)

// Peer is one ffmpeg (a publisher, a transcoder or a player) that Keep runs
// for as long as the load lasts, restarting it when it exits early.
type Peer struct {
	Name string
	Args []string // ffmpeg's
	Log  *Tail    // its stderr, across restarts
	// Stdout, if set, is called before each start and gives the process's
	// stdout (players write the stream there); nil discards it.
	Stdout func() io.Writer

	restarts atomic.Int64
	cur      atomic.Pointer[Child]
}

// NewPeer is a peer running ffmpeg with args.
func NewPeer(name string, args ...string) *Peer {
	return &Peer{Name: name, Args: args, Log: NewTail(4096)}
}

// Keep runs p in g until ctx ends, restarting it (after a pause) when it
// exits.
func (p *Peer) Keep(ctx context.Context, g *Group) {
	for {
		cmd := exec.Command("ffmpeg", p.Args...)
		if p.Stdout != nil {
			cmd.Stdout = p.Stdout()
		}
		cmd.Stderr = p.Log
		c, err := g.Start(p.Name, cmd)
		if err != nil {
			return
		}
		p.cur.Store(c)
		select {
		case <-ctx.Done():
			return
		case <-c.Done:
		}
		if ctx.Err() != nil {
			return
		}
		p.restarts.Add(1)
		slog.Debug("peer exited, restarting", "peer", p.Name, "err", c.Err, "log", p.Log.String())
		if Sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
}

// Restarts is how often the peer exited early and was started again.
func (p *Peer) Restarts() int64 { return p.restarts.Load() }

// Running is the peer's current process (nil before its first start); it
// may have exited meanwhile.
func (p *Peer) Running() *Child { return p.cur.Load() }

// Restarts sums the restarts of peers (or of anything built on a Peer).
func Restarts[P interface{ Restarts() int64 }](peers []P) int64 {
	var n int64
	for _, p := range peers {
		n += p.Restarts()
	}
	return n
}
