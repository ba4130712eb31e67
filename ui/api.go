package ui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/podiumlive/podium/internal/avstat"
)

// The API's error codes (SRS puts a non-zero "code" in the body).
const (
	codeOK           = 0
	codeBadRequest   = 400
	codeUnauthorized = 401
	codeNotFound     = 404
	codeConflict     = 409
	codeTooMany      = 429
	codeBusy         = 503
	// codeStreamNotFound is SRS's ERROR_RTMP_STREAM_NOT_FOUND.
	codeStreamNotFound = 2048
)

// envelope is SRS's response frame: code, server, service, pid.
func (u *UI) envelope() map[string]any {
	return map[string]any{"code": codeOK, "server": u.server, "service": u.server, "pid": u.pid}
}

// writeJSON marshals v itself: the same bytes for the API and SSE.
func writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.Data(http.StatusInternalServerError, "application/json; charset=utf-8",
			[]byte(`{"code":500,"error":"encode response"}`))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/json; charset=utf-8", b)
}

func apiError(c *gin.Context, status, code int, msg string) {
	writeJSON(c, status, map[string]any{"code": code, "error": msg})
	c.Abort()
}

var semver = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)

func (u *UI) versions(c *gin.Context) {
	var major, minor, rev int
	if m := semver.FindStringSubmatch(u.opts.Version); m != nil {
		major, _ = strconv.Atoi(m[1])
		minor, _ = strconv.Atoi(m[2])
		rev, _ = strconv.Atoi(m[3])
	}
	e := u.envelope()
	e["data"] = map[string]any{"major": major, "minor": minor, "revision": rev, "version": u.opts.Version}
	writeJSON(c, http.StatusOK, e)
}

// SummaryView is /api/v1/summaries' data: SRS's self and system, plus
// Podium's counts.
type SummaryView struct {
	OK     bool         `json:"ok"`
	NowMs  int64        `json:"now_ms"`
	Self   SelfView     `json:"self"`
	System HostStats    `json:"system"`
	Podium PodiumCounts `json:"podium"`
}

// SelfView is the Podium process.
type SelfView struct {
	Version    string  `json:"version"`
	Pid        int     `json:"pid"`
	Ppid       int     `json:"ppid"`
	MemKbyte   uint64  `json:"mem_kbyte"`
	MemPercent float64 `json:"mem_percent"`
	CPUPercent float64 `json:"cpu_percent"` // of one core
	Uptime     float64 `json:"uptime"`      // seconds since start
	Goroutines int     `json:"goroutines"`
}

// PodiumCounts are the dashboard's header numbers.
type PodiumCounts struct {
	Streams    int            `json:"streams"`
	Publishers int            `json:"publishers"` // streams with an outside publisher
	Viewers    int            `json:"viewers"`
	Clients    int            `json:"clients"`
	RecvBytes  uint64         `json:"recv_bytes"`
	SendBytes  uint64         `json:"send_bytes"`
	RecvKbps   float64        `json:"recv_kbps"`
	SendKbps   float64        `json:"send_kbps"`
	Dropped    uint64         `json:"dropped"`
	Forwards   map[string]int `json:"forwards"`   // by state
	Transcodes map[string]int `json:"transcodes"` // by state
}

func (u *UI) summary(w *world, views []StreamView) SummaryView {
	h := u.host.stats()
	s := SummaryView{
		OK: true, NowMs: w.now.UnixMilli(), System: h,
		Self: SelfView{
			Version: u.opts.Version, Pid: os.Getpid(), Ppid: os.Getppid(),
			MemKbyte: h.ProcRSSKB, CPUPercent: h.ProcCPUPercent,
			Uptime: round2(w.now.Sub(u.started).Seconds()), Goroutines: runtime.NumGoroutine(),
		},
		Podium: PodiumCounts{Forwards: map[string]int{}, Transcodes: map[string]int{}},
	}
	if h.MemTotalKB > 0 {
		s.Self.MemPercent = round2(100 * float64(h.ProcRSSKB) / float64(h.MemTotalKB))
	}
	tt := u.traffic.totals()
	p := &s.Podium
	p.RecvBytes, p.SendBytes, p.Dropped = tt.In, tt.Out, tt.Dropped
	p.Streams = len(views)
	for i := range views {
		v := &views[i]
		if v.Publish.Protocol != "transcode" {
			p.Publishers++
		}
		p.Viewers += v.Viewers
		p.Clients += v.Clients + 1
		p.RecvKbps += v.Kbps.Recv
		p.SendKbps += v.Kbps.Send
		for _, f := range v.Fwd {
			p.Forwards[f.State]++
		}
		if v.Trans != nil {
			p.Transcodes[v.Trans.State]++
		}
	}
	p.RecvKbps, p.SendKbps = round2(p.RecvKbps), round2(p.SendKbps)
	return s
}

func (u *UI) summaries(c *gin.Context) {
	w := u.read()
	e := u.envelope()
	e["data"] = u.summary(w, w.streamViews())
	writeJSON(c, http.StatusOK, e)
}

// streams lists every live stream. SRS's start and count are honoured
// when given; by default every stream is listed (SRS stops at 10).
func (u *UI) streams(c *gin.Context) {
	views := u.read().streamViews()
	start, count := 0, len(views)
	if s := c.Query("start"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			apiError(c, http.StatusBadRequest, codeBadRequest, "start: not a non-negative integer")
			return
		}
		start = min(n, len(views))
	}
	if s := c.Query("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			apiError(c, http.StatusBadRequest, codeBadRequest, "count: not a non-negative integer")
			return
		}
		count = n
	}
	end := min(len(views), start+min(count, len(views)))
	e := u.envelope()
	e["streams"] = views[start:end]
	writeJSON(c, http.StatusOK, e)
}

// streamIndex finds the stream :id names in w, answering 400/404 itself.
func streamIndex(c *gin.Context, w *world) (int, bool) {
	raw := c.Param("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || len(raw) > 20 {
		apiError(c, http.StatusBadRequest, codeBadRequest, "stream id: not a number")
		return 0, false
	}
	for i := range w.stats {
		if w.stats[i].ID == id {
			return i, true
		}
	}
	apiError(c, http.StatusNotFound, codeStreamNotFound, "stream not found")
	return 0, false
}

func (u *UI) stream(c *gin.Context) {
	w := u.read()
	i, ok := streamIndex(c, w)
	if !ok {
		return
	}
	e := u.envelope()
	e["stream"] = w.view(i)
	writeJSON(c, http.StatusOK, e)
}

// kick disconnects a stream's publisher (DELETE /api/v1/streams/:id).
func (u *UI) kick(c *gin.Context) {
	raw := c.Param("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || len(raw) > 20 {
		apiError(c, http.StatusBadRequest, codeBadRequest, "stream id: not a number")
		return
	}
	st := u.deps.Hub.ByID(id)
	if st == nil {
		apiError(c, http.StatusNotFound, codeStreamNotFound, "stream not found")
		return
	}
	if !st.Kick() {
		apiError(c, http.StatusConflict, codeConflict,
			"this stream's publisher is Podium itself ("+st.Publisher().Protocol+"): kick its input instead")
		return
	}
	u.log.Info("publisher kicked from the API", "stream", st.Key().String(), "remote", st.Publisher().Remote,
		"by", clientIP(c.Request))
	u.events.poke()
	writeJSON(c, http.StatusOK, u.envelope())
}

func (u *UI) clientsList(c *gin.Context) {
	e := u.envelope()
	e["clients"] = u.read().clients()
	writeJSON(c, http.StatusOK, e)
}

func (u *UI) forwards(c *gin.Context) {
	now := time.Now()
	out := []FwdView{}
	if u.deps.Forwards != nil {
		for _, f := range u.deps.Forwards() {
			out = append(out, fwdView(f, now))
		}
	}
	e := u.envelope()
	e["forwards"] = out
	writeJSON(c, http.StatusOK, e)
}

func (u *UI) transcodes(c *gin.Context) {
	out := []*TransView{}
	if u.deps.Transcodes != nil {
		for _, t := range u.deps.Transcodes() {
			tv := transView(&t)
			out = append(out, tv)
		}
	}
	e := u.envelope()
	e["transcodes"] = out
	writeJSON(c, http.StatusOK, e)
}

// HWView is one encoder backend, as `podium hw` prints it.
type HWView struct {
	Backend string `json:"backend"`
	Encoder string `json:"encoder"`
	Device  string `json:"device"`
	Usable  bool   `json:"usable"`
	Reason  string `json:"reason"`
}

func (u *UI) hwViews() ([]HWView, string) {
	out := []HWView{}
	if u.deps.HW == nil {
		return out, ""
	}
	st := u.deps.HW()
	for _, s := range st {
		out = append(out, HWView{Backend: s.Backend, Encoder: s.Encoder, Device: s.Device, Usable: s.Usable, Reason: s.Reason})
	}
	var table bytes.Buffer
	avstat.WriteTable(&table, st)
	return out, table.String()
}

func (u *UI) hw(c *gin.Context) {
	views, table := u.hwViews()
	e := u.envelope()
	e["hw"] = views
	e["table"] = table
	writeJSON(c, http.StatusOK, e)
}

func (u *UI) sources(c *gin.Context) {
	out := []SourceView{}
	if u.deps.Sources != nil {
		for _, s := range u.deps.Sources() {
			out = append(out, sourceView(s))
		}
	}
	e := u.envelope()
	e["sources"] = out
	writeJSON(c, http.StatusOK, e)
}

// Snapshot is one live update of the dashboard (the SSE "snapshot" event).
type Snapshot struct {
	NowMs   int64        `json:"now_ms"`
	Summary SummaryView  `json:"summary"`
	Streams []StreamView `json:"streams"`
	Sources []SourceView `json:"sources"`
}

func (u *UI) snapshot() Snapshot {
	w := u.read()
	views := w.streamViews()
	s := Snapshot{NowMs: w.now.UnixMilli(), Summary: u.summary(w, views), Streams: views, Sources: []SourceView{}}
	if u.deps.Sources != nil {
		for _, src := range u.deps.Sources() {
			s.Sources = append(s.Sources, sourceView(src))
		}
	}
	return s
}

func (u *UI) snapshotJSON() []byte {
	b, err := json.Marshal(u.snapshot())
	if err != nil {
		u.log.Error("encode dashboard snapshot", "err", err)
		return nil
	}
	return b
}
