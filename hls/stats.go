package hls

import (
	"sort"
	"time"
)

// Stats is a snapshot of HLS: totals and one entry per stream that has
// files (live, or ended and not disposed of yet).
type Stats struct {
	// Requests counts every HLS request (playlists and segments);
	// NotFound those answered 404.
	Requests uint64        `json:"requests"`
	NotFound uint64        `json:"not_found"`
	Streams  []StreamStats `json:"streams"`
}

// StreamStats is one stream's HLS output.
type StreamStats struct {
	Vhost    string `json:"vhost"`
	App      string `json:"app"`
	Stream   string `json:"stream"`
	Live     bool   `json:"live"`
	Variant  string `json:"variant"`
	Playlist string `json:"playlist"` // URL path: /APP/STREAM.m3u8
	// SegmentsWritten counts segments written by this process.
	SegmentsWritten uint64 `json:"segments_written"`
	// Sequence is the media sequence number of the newest listed segment;
	// MediaSequence that of the oldest (EXT-X-MEDIA-SEQUENCE).
	Sequence              uint64    `json:"sequence"`
	MediaSequence         uint64    `json:"media_sequence"`
	DiscontinuitySequence uint64    `json:"discontinuity_sequence"`
	Listed                int       `json:"listed"`
	TargetDuration        int       `json:"target_duration"`       // seconds
	LastDuration          float64   `json:"last_segment_duration"` // seconds
	LastSegmentAt         time.Time `json:"last_segment_at"`
	BytesOnDisk           int64     `json:"bytes_on_disk"` // segments listed or kept
	Requests              uint64    `json:"requests"`
	WriteErrors           uint64    `json:"write_errors"`
	LastError             string    `json:"last_error,omitempty"`
}

func (s *hlsStream) setLive(live bool) {
	s.mu.Lock()
	s.stats.Live = live
	s.mu.Unlock()
}

func (s *hlsStream) snapshot() StreamStats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.Requests = s.requests.Load()
	return st
}

// Stats returns a snapshot, streams ordered by vhost/app/stream.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	list := make([]*hlsStream, 0, len(m.streams))
	for _, s := range m.streams {
		list = append(list, s)
	}
	m.mu.Unlock()
	out := Stats{Requests: m.requests.Load(), NotFound: m.notFound.Load(), Streams: make([]StreamStats, 0, len(list))}
	for _, s := range list {
		out.Streams = append(out.Streams, s.snapshot())
	}
	sort.Slice(out.Streams, func(i, j int) bool {
		a, b := out.Streams[i], out.Streams[j]
		if a.Vhost != b.Vhost {
			return a.Vhost < b.Vhost
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return a.Stream < b.Stream
	})
	return out
}
