package hls

import (
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// request is a parsed HLS URL: /APP/STREAM.m3u8, /APP/STREAM/SEQ.ts,
// /APP/STREAM/SEQ.m4s or /APP/STREAM/init-N.mp4.
type request struct {
	app, name string
	rel       string // path under the vhost's directory
	playlist  bool
	ctype     string
}

// parsePath accepts only the shapes above, with every part a safe name
// ([0-9A-Za-z_-.], no dot segment, no NUL, no percent sign left after the
// one decoding net/http did): nothing else can name a file, so no path
// can leave the HLS directory.
func parsePath(p string) (request, bool) {
	var rq request
	if !strings.HasPrefix(p, "/") {
		return rq, false
	}
	parts := strings.Split(p[1:], "/")
	for _, part := range parts {
		if streamurl.ValidName(part) != nil {
			return rq, false
		}
	}
	switch len(parts) {
	case 2:
		name, ok := strings.CutSuffix(parts[1], ".m3u8")
		if !ok || streamurl.ValidName(name) != nil {
			return rq, false
		}
		rq = request{app: parts[0], name: name, playlist: true, ctype: "application/vnd.apple.mpegurl"}
		rq.rel = parts[0] + "/" + parts[1]
	case 3:
		file := parts[2]
		switch {
		case digitsWith(file, "", ".ts"):
			rq.ctype = "video/mp2t"
		case digitsWith(file, "", ".m4s"):
			rq.ctype = "video/iso.segment"
		case digitsWith(file, "init-", ".mp4"):
			rq.ctype = "video/mp4"
		default:
			return rq, false
		}
		rq.app, rq.name = parts[0], parts[1]
		rq.rel = parts[0] + "/" + parts[1] + "/" + file
	default:
		return rq, false
	}
	if path.Clean("/"+rq.rel) != "/"+rq.rel {
		return request{}, false
	}
	return rq, true
}

// digitsWith reports whether s is prefix + 1-20 decimal digits + suffix.
func digitsWith(s, prefix, suffix string) bool {
	mid, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, suffix)
	if !ok || mid == "" || len(mid) > 20 {
		return false
	}
	for _, c := range []byte(mid) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ServeHTTP serves playlists and segments. ?vhost= picks the vhost when
// several serve HLS; without it they are searched in name order.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rq, ok := parsePath(r.URL.Path)
	if !ok {
		m.notFoundReply(w)
		return
	}
	vhosts := m.order
	if v := r.URL.Query().Get("vhost"); v != "" {
		if _, ok := m.vhosts[v]; !ok {
			m.notFoundReply(w)
			return
		}
		vhosts = []string{v}
	}
	for _, vh := range vhosts {
		if rq.playlist && m.opts.OnDemand != nil && m.opts.OnDemand(vh) &&
			!m.demandPlaylist(r.Context(), stream.Key{Vhost: vh, App: rq.app, Name: rq.name}) {
			continue
		}
		if m.serveFrom(w, r, vh, rq) {
			return
		}
	}
	m.notFoundReply(w)
}

func (m *Manager) serveFrom(w http.ResponseWriter, r *http.Request, vhost string, rq request) bool {
	root, err := os.OpenRoot(m.roots[vhost])
	if err != nil {
		return false
	}
	defer root.Close()
	f, err := root.Open(rq.rel)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	key := stream.Key{Vhost: vhost, App: rq.app, Name: rq.name}
	m.mu.Lock()
	s := m.streams[key]
	m.mu.Unlock()
	if s != nil {
		s.requests.Add(1)
	}
	h := w.Header()
	h.Set("Content-Type", rq.ctype)
	if rq.playlist {
		h.Set("Cache-Control", "no-cache")
	} else {
		// Segment names are never reused (the sequence is persisted).
		h.Set("Cache-Control", "public, max-age=600")
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return true
}

func (m *Manager) notFoundReply(w http.ResponseWriter) {
	m.notFound.Add(1)
	w.Header().Set("Cache-Control", "no-cache")
	http.Error(w, "404 page not found", http.StatusNotFound)
}
