// Package ondemand holds what the sources that pull a stream only while
// someone watches it (RTSP on_demand cameras, an edge's pulls from its
// origins) share: who counts as a viewer. The hub itself only says who
// reads a stream and who waits for one (stream.EventDemand, Hub.Waiting).
package ondemand

import "github.com/podiumlive/podium/ingest/stream"

// Watched reports whether anyone but an internal stage reads one of keys:
// a transcode (whose own output is among keys when it matters) and an HLS
// segmenter (HLS viewers are HTTP requests, which tell their source
// through Hub.Demand) are not viewers.
func Watched(hub *stream.Hub, keys ...stream.Key) bool {
	for _, k := range keys {
		st := hub.Get(k)
		if st == nil {
			continue
		}
		for _, r := range st.Readers() {
			switch r.Info().Protocol {
			case "transcode", "hls":
			default:
				return true
			}
		}
	}
	return false
}
