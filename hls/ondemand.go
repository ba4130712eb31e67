package hls

import (
	"context"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
)

// demandPlaylist runs for a playlist request of a vhost whose streams are
// pulled on demand (an edge): the request is demand for the stream (the
// first one starts the pull, later ones keep it going), and until the
// stream's current publish has a segment listed it waits, up to
// DemandWait, for one. It reports whether one is listed.
func (m *Manager) demandPlaylist(ctx context.Context, key stream.Key) bool {
	m.hub.Demand(key)
	t := time.NewTimer(m.opts.DemandWait)
	defer t.Stop()
	for {
		m.mu.Lock()
		s := m.streams[key]
		ready := s != nil && s.live && s.liveSegs > 0
		listed := m.listed
		m.mu.Unlock()
		if ready {
			return true
		}
		select {
		case <-listed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// segmentListed counts a segment of s's current publish and wakes the
// playlist requests waiting for one.
func (m *Manager) segmentListed(s *hlsStream) {
	m.mu.Lock()
	s.liveSegs++
	close(m.listed)
	m.listed = make(chan struct{})
	m.mu.Unlock()
}
