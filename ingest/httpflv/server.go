// Package httpflv plays the hub's streams over HTTP-FLV:
// GET http://HOST:PORT/APP/STREAM.flv answers one endless chunked FLV
// file, which mpegts.js (browsers), ffplay, VLC and SRS edges read. A play
// is an RTMP play in all but framing: the same vhost resolution, the same
// access rules and on_play/on_stop hooks, the same hub subscription (with
// the play wait), starting at the GOP cache's keyframe with onMetaData and
// the sequence headers first. A slow client loses whole GOPs in its hub
// queue; it never slows the publisher.
package httpflv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ingest/streamurl"
)

// Protocol names HTTP-FLV players in stats ("flv-play" in /api/v1/clients,
// SRS's type) and in access requests.
const Protocol = "flv"

// Config is what the server needs from Podium's configuration.
type Config struct {
	// PlayWait is how long a player waits for a publisher that is not
	// there yet (rtmp.play_wait: the same for every protocol).
	PlayWait time.Duration
	// WriteTimeout fails a player that takes no bytes for this long.
	WriteTimeout time.Duration
	// MergeWait: a player is written at most once per MergeWait, with
	// everything that came meanwhile (0: at every packet). The latency it
	// adds buys far fewer wake-ups and writes per player.
	MergeWait time.Duration
	// Vhost reports whether a vhost is configured.
	Vhost func(name string) bool
	// Access admits players (nil: everyone).
	Access *access.Guard
	// Unnamed maps the stream of a play that names no vhost (no ?vhost=,
	// no Host header naming one: a __defaultVhost__ stream) to the stream
	// it plays; nil keeps it. Podium plays the default vhost's transcoded
	// twin there, when it has one, as HLS serves it: H.264 + AAC is what
	// HTTP-FLV players (mpegts.js) can play.
	Unnamed func(stream.Key) stream.Key
}

// Server is the http.Handler of HTTP-FLV plays.
type Server struct {
	cfg Config
	hub *stream.Hub
	log *slog.Logger
	ctx context.Context // ends every play at shutdown
	ids atomic.Uint64   // client ids, sent to hooks
	wg  sync.WaitGroup
}

// New makes a server whose plays all end when ctx does.
func New(ctx context.Context, cfg Config, hub *stream.Hub, log *slog.Logger) *Server {
	if cfg.PlayWait <= 0 {
		cfg.PlayWait = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Vhost == nil {
		cfg.Vhost = func(name string) bool { return name == streamurl.DefaultVhost }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, hub: hub, log: log, ctx: ctx}
}

// Wait returns when every play has ended (after the server's ctx ended).
func (s *Server) Wait() { s.wg.Wait() }

// parsePath reads /APP/STREAM.flv; both names must be safe names.
func parsePath(p string) (app, name string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", "", false
	}
	app, file, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(file, "/") {
		return "", "", false
	}
	name, ok = strings.CutSuffix(file, ".flv")
	if !ok || streamurl.ValidName(app) != nil || streamurl.ValidName(name) != nil {
		return "", "", false
	}
	return app, name, true
}

// ServeHTTP answers GET /APP/STREAM.flv (CORS open, as HLS).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	app, name, ok := parsePath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	named := name
	if r.URL.RawQuery != "" {
		named += "?" + r.URL.RawQuery
	}
	// The vhost as for RTMP: ?vhost=, else the Host header when it names
	// a vhost, else the default one (see Config.Unnamed).
	tcURL := "http://" + r.Host + "/" + app
	req, err := streamurl.Parse(tcURL, app, named)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	vhost, err := req.ResolveVhost(s.cfg.Vhost)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	key := stream.Key{Vhost: vhost, App: req.App, Name: req.Stream}
	if req.Vhost == "" && vhost == streamurl.DefaultVhost && s.cfg.Unnamed != nil {
		key = s.cfg.Unnamed(key)
	}
	s.wg.Add(1)
	defer s.wg.Done()
	p := &play{
		srv: s, w: w, r: r, req: req, tcURL: tcURL, start: time.Now(), key: key,
		id: "flv-" + strconv.FormatUint(s.ids.Add(1), 10),
	}
	p.run()
}

// clientIP is the request's peer address without its port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// status maps a subscribe error to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, stream.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, stream.ErrHubClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusServiceUnavailable
}
