package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxViewerKeys bounds the meter's table (a flood of made-up ps= values).
const maxViewerKeys = 200_000

// Meter wraps the handler of the play files (HLS playlists and segments,
// HTTP-FLV): it counts HLS viewers per stream (a viewer is a session,
// ?ps=, or else an address and browser, that fetched a playlist within the
// window) and the bytes sent, and with a play secret it refuses
// playlists and FLV without a valid token. It never touches the media
// itself.
type Meter struct {
	secret string
	window time.Duration

	bytes atomic.Uint64

	mu   sync.Mutex
	seen map[string]map[string]time.Time // "app/stream" → viewer → last fetch
	n    int
}

// NewMeter returns a meter counting viewers seen within window.
func NewMeter(secret string, window time.Duration) *Meter {
	return &Meter{secret: secret, window: window, seen: map[string]map[string]time.Time{}}
}

// Wrap returns next with the meter in front.
func (m *Meter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, stream, kind := playPath(r.URL.Path)
		if kind != "" && m.secret != "" && r.Method != http.MethodOptions &&
			!CheckToken(m.secret, app, stream, r.URL.Query().Get("token"), time.Now()) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			http.Error(w, "play token missing, invalid or expired", http.StatusForbidden)
			return
		}
		// HLS viewers are counted by their playlist fetches; an HTTP-FLV
		// viewer is one long response, a reader of the hub, counted there.
		if kind == "m3u8" && r.Method == http.MethodGet {
			m.saw(app+"/"+stream, viewerKey(r), time.Now())
		}
		next.ServeHTTP(&countingWriter{ResponseWriter: w, n: &m.bytes}, r)
	})
}

// playPath splits /APP/STREAM.m3u8 and /APP/STREAM.flv; kind is "" for
// anything else (segments are counted as bytes only).
func playPath(p string) (app, stream, kind string) {
	var ext string
	switch {
	case strings.HasSuffix(p, ".m3u8"):
		ext = ".m3u8"
	case strings.HasSuffix(p, ".flv"):
		ext = ".flv"
	default:
		return "", "", ""
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, "/"), ext), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", ""
	}
	return parts[0], parts[1], ext[1:]
}

func viewerKey(r *http.Request) string {
	if ps := r.URL.Query().Get("ps"); validSession(ps) {
		return ps
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	h := sha256.Sum256([]byte(host + "\x00" + r.UserAgent()))
	return hex.EncodeToString(h[:8])
}

func (m *Meter) saw(stream, viewer string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.seen[stream]
	if v == nil {
		v = map[string]time.Time{}
		m.seen[stream] = v
	}
	if _, ok := v[viewer]; !ok {
		if m.n >= maxViewerKeys {
			m.sweepLocked(now)
			if m.n >= maxViewerKeys {
				return
			}
		}
		m.n++
	}
	v[viewer] = now
}

func (m *Meter) sweepLocked(now time.Time) {
	for s, v := range m.seen {
		for k, at := range v {
			if now.Sub(at) > m.window {
				delete(v, k)
				m.n--
			}
		}
		if len(v) == 0 {
			delete(m.seen, s)
		}
	}
}

// Viewers returns the viewers seen within the window, per "app/stream".
func (m *Meter) Viewers(now time.Time) map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	out := make(map[string]int, len(m.seen))
	for s, v := range m.seen {
		out[s] = len(v)
	}
	return out
}

// Bytes is the total sent through the meter.
func (m *Meter) Bytes() uint64 { return m.bytes.Load() }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(uint64(n))
	return n, err
}

// ReadFrom keeps the server's sendfile path for segments (http.ServeContent
// copies files through it).
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(c.ResponseWriter, r)
	}
	c.n.Add(uint64(n))
	return n, err
}

// Flush passes flushes on (HTTP-FLV streams its body).
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
