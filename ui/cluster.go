package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/podiumlive/podium/cluster"
)

// Cluster is what the allocator, the cluster API and the watch page need
// from the cluster stage (cmd wires *cluster.Cluster in).
type Cluster interface {
	Play(ctx context.Context, r cluster.PlayRequest) (cluster.Answer, error)
	Switch(ctx context.Context, session string) (cluster.Answer, error)
	Nodes(ctx context.Context) ([]cluster.NodeInfo, bool)
	Streams(ctx context.Context) ([]cluster.StreamInfo, bool)
	Status() cluster.Status
	RegisterSRS(ctx context.Context, body []byte, remoteIP string) (string, error)
	// Groups lists the registry's groups of origins and the recent moves
	// of a class between members (from the last heartbeat's read).
	Groups() ([]cluster.GroupInfo, []cluster.Move)
}

// Play allocation limits per client address: a classroom behind one NAT
// address joins at once, so the burst is large; a flood gets 429.
const (
	defaultPlayBurst  = 200
	defaultPlayRefill = 20 * time.Millisecond // 50 a second
	maxSwitchBody     = 4 << 10
)

// clusterRoutes adds the allocator (public, rate-limited), the SRS
// registration, the watch page and the admin cluster API.
func (u *UI) clusterRoutes(e *gin.Engine, v1 *gin.RouterGroup) {
	if u.deps.Cluster == nil {
		return
	}
	e.GET("/api/v1/play", u.limitPlay, u.play)
	e.POST("/api/v1/play/switch", u.limitPlay, u.playSwitch)
	e.OPTIONS("/api/v1/play/switch", u.playPreflight)
	e.POST("/api/v1/srs/register", u.srsRegister)
	e.GET("/watch/:app/:stream", u.watchPage)
	e.GET("/cluster", u.require(kindPage), func(c *gin.Context) { servePage(c, "assets/cluster.html") })
	v1.GET("/cluster/nodes", u.clusterNodes)
	v1.GET("/cluster/streams", u.clusterStreams)
	v1.GET("/cluster/groups", u.clusterGroups)
}

func (u *UI) limitPlay(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*")
	if !u.playLimit.take(clientIP(c.Request), time.Now()) {
		c.Header("Retry-After", "1")
		apiError(c, http.StatusTooManyRequests, codeTooMany, "too many play requests from this address; try again in a second")
		return
	}
	c.Next()
}

func (u *UI) playPreflight(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	c.Status(http.StatusNoContent)
}

// isPlayName is a vhost, app or stream name a play request may carry:
// [0-9A-Za-z_.-], not "." or "..", at most 128 bytes: no path tricks.
func isPlayName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (u *UI) play(c *gin.Context) {
	q := c.Request.URL.Query()
	req := cluster.PlayRequest{
		Vhost: q.Get("vhost"), App: q.Get("app"), Stream: q.Get("stream"),
		Proto: q.Get("proto"), Line: q.Get("line"), Token: q.Get("token"),
	}
	switch {
	case !isPlayName(req.App):
		apiError(c, http.StatusBadRequest, codeBadRequest, "app: required, letters, digits, _ . - only")
		return
	case !isPlayName(req.Stream):
		apiError(c, http.StatusBadRequest, codeBadRequest, "stream: required, letters, digits, _ . - only")
		return
	case req.Vhost != "" && !isPlayName(req.Vhost):
		apiError(c, http.StatusBadRequest, codeBadRequest, "vhost: letters, digits, _ . - only")
		return
	case req.Proto != "" && req.Proto != cluster.ProtoHLS && req.Proto != cluster.ProtoFLV:
		apiError(c, http.StatusBadRequest, codeBadRequest, "proto: hls or flv")
		return
	case len(req.Line) > 64:
		apiError(c, http.StatusBadRequest, codeBadRequest, "line: longer than 64 characters")
		return
	}
	a, err := u.deps.Cluster.Play(c.Request.Context(), req)
	u.answer(c, a, err)
}

func (u *UI) answer(c *gin.Context, a cluster.Answer, err error) {
	switch {
	case errors.Is(err, cluster.ErrUnknownStream):
		apiError(c, http.StatusNotFound, codeNotFound, "stream not found on any node")
	case errors.Is(err, cluster.ErrNoSession):
		apiError(c, http.StatusNotFound, codeNotFound, "play session unknown or expired")
	case errors.Is(err, cluster.ErrBadToken):
		apiError(c, http.StatusForbidden, http.StatusForbidden, "token: missing, invalid or expired")
	case errors.Is(err, cluster.ErrNoNode):
		apiError(c, http.StatusServiceUnavailable, codeBusy, "no node can take a viewer of this stream now")
	case err != nil:
		u.log.Warn("play allocation", "err", err)
		apiError(c, http.StatusServiceUnavailable, codeBusy, "allocation failed")
	default:
		writeJSON(c, http.StatusOK, map[string]any{"code": codeOK, "data": a})
	}
}

func (u *UI) playSwitch(c *gin.Context) {
	r := c.Request
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, maxSwitchBody))
	var req struct {
		Session string `json:"session"`
		Reason  string `json:"reason"`
	}
	if err != nil {
		apiError(c, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &req) != nil {
		if f, ferr := url.ParseQuery(string(body)); ferr == nil && f.Get("session") != "" {
			req.Session = f.Get("session") // a form post
		} else {
			apiError(c, http.StatusBadRequest, codeBadRequest, `body: not a JSON object {"session": ...}`)
			return
		}
	}
	if req.Session == "" {
		req.Session = r.URL.Query().Get("session")
	}
	if req.Session == "" {
		apiError(c, http.StatusBadRequest, codeBadRequest, "session: required")
		return
	}
	a, err := u.deps.Cluster.Switch(r.Context(), req.Session)
	u.answer(c, a, err)
}

// srsRegister takes a stock SRS box's heartbeat (srs.conf heartbeat { url
// http://THIS-BOX:8080/api/v1/srs/register; }). SRS cannot send a
// password, so only boxes on private, loopback or link-local addresses
// (or an admin) may register: an SRS box reachable from the internet
// must not be able to take students.
func (u *UI) srsRegister(c *gin.Context) {
	r := c.Request
	ip := remoteIP(r)
	if !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && u.auth.check(r) != authOK {
		apiError(c, http.StatusForbidden, http.StatusForbidden, "registration only from a private address or with the admin login")
		return
	}
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, 16<<10))
	if err != nil {
		apiError(c, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	id, err := u.deps.Cluster.RegisterSRS(r.Context(), body, ip.String())
	if err != nil {
		u.srsLog.Do(ip.String()+err.Error(), func() { u.log.Warn("srs register refused", "ip", ip.String(), "err", err) })
		apiError(c, http.StatusBadRequest, codeBadRequest, "srs register: "+err.Error())
		return
	}
	writeJSON(c, http.StatusOK, map[string]any{"code": codeOK, "pid": u.pid, "node": id})
}

func remoteIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return net.IPv4zero
	}
	return ip
}

func (u *UI) clusterNodes(c *gin.Context) {
	nodes, stale := u.deps.Cluster.Nodes(c.Request.Context())
	groups, moves := u.deps.Cluster.Groups()
	u.clusterList(c, "nodes", nodes, stale, "groups", groups, "moves", moves)
}

func (u *UI) clusterStreams(c *gin.Context) {
	streams, stale := u.deps.Cluster.Streams(c.Request.Context())
	u.clusterList(c, "streams", streams, stale)
}

// clusterList answers a list at the top level, as the API's other lists
// (SRS's shape), and under data, as the allocator answers; more is
// further name, value pairs answered the same way.
func (u *UI) clusterList(c *gin.Context, name string, list any, stale bool, more ...any) {
	e := u.envelope()
	st := u.deps.Cluster.Status()
	e[name], e["stale"], e["registry"] = list, stale, st
	data := map[string]any{name: list, "stale": stale, "registry": st}
	for i := 0; i+1 < len(more); i += 2 {
		e[more[i].(string)], data[more[i].(string)] = more[i+1], more[i+1]
	}
	e["data"] = data
	writeJSON(c, http.StatusOK, e)
}

// watchPage is the students' page: it asks the allocator and plays what it
// answers, from whichever box that is. It may be framed by an LMS, and
// its player fetches media from the other boxes.
func (u *UI) watchPage(c *gin.Context) {
	if !isPlayName(c.Param("app")) || !isPlayName(c.Param("stream")) {
		c.String(http.StatusNotFound, "404 page not found\n")
		return
	}
	h := c.Writer.Header()
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src *; media-src * blob:; worker-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'")
	servePage(c, "assets/watch.html")
}

// onceSet runs f once per key (bounded): one log line per distinct
// refusal, not one per heartbeat.
type onceSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

func newOnceSet() *onceSet { return &onceSet{seen: map[string]bool{}} }

func (o *onceSet) Do(key string, f func()) {
	o.mu.Lock()
	seen := o.seen[key]
	if !seen {
		if len(o.seen) > 1024 {
			clear(o.seen)
		}
		o.seen[key] = true
	}
	o.mu.Unlock()
	if !seen {
		f()
	}
}

// CPU is the whole box's CPU in use over the last sample, 0-1 (the
// cluster heartbeat reports it).
func (u *UI) CPU() float64 { return u.host.stats().CPUPercent / 100 }
