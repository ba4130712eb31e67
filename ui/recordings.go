package ui

import (
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/podiumlive/podium/ingest/stream"
)

// RecordingStore is the DVR as the UI reads it (cmd wires dvr.Manager).
type RecordingStore interface {
	Recordings() []Recording
	// OpenRecording opens a closed recording; ErrRecordingNotFound or
	// ErrRecordingBusy (still being written) when it cannot.
	OpenRecording(id string) (*os.File, Recording, error)
	// DeleteRecording removes a closed recording's file.
	DeleteRecording(id string) error
	RecordingStats() RecordingStats
	// IsRecording reports whether a live stream is being recorded.
	IsRecording(k stream.Key) bool
}

// Errors a RecordingStore returns.
var (
	ErrRecordingNotFound = errors.New("no such recording")
	ErrRecordingBusy     = errors.New("recording is still being written")
)

// Recording is one recorded file.
type Recording struct {
	ID        string
	Stream    stream.Key
	File      string
	Start     time.Time
	Duration  time.Duration
	Bytes     int64
	Recording bool
}

// RecordingStats are the DVR's counters for /metrics.
type RecordingStats struct {
	Bytes     int64
	Files     int64
	Failures  int64
	Recording int
	Disks     []RecordingDisk
}

// RecordingDisk is the free space where a vhost records (-1: unknown).
type RecordingDisk struct {
	Vhost string
	Dir   string
	Free  int64
}

// RecordingView is one entry of GET /api/v1/recordings.
type RecordingView struct {
	ID        string  `json:"id"`
	Vhost     string  `json:"vhost"`
	App       string  `json:"app"`
	Stream    string  `json:"stream"`
	File      string  `json:"file"`
	URL       string  `json:"url"`
	StartMs   int64   `json:"start_ms"`
	Duration  float64 `json:"duration"` // seconds
	Bytes     int64   `json:"bytes"`
	Recording bool    `json:"recording"`
}

func recordingURL(id string) string { return "/api/v1/recordings/" + id + "/download" }

func (u *UI) recordingsList(c *gin.Context) {
	out := []RecordingView{}
	if u.deps.Recordings != nil {
		for _, r := range u.deps.Recordings.Recordings() {
			out = append(out, RecordingView{
				ID: r.ID, Vhost: r.Stream.Vhost, App: r.Stream.App, Stream: r.Stream.Name,
				File: r.File, URL: recordingURL(r.ID), StartMs: r.Start.UnixMilli(),
				Duration: math.Round(r.Duration.Seconds()*1000) / 1000, Bytes: r.Bytes, Recording: r.Recording,
			})
		}
	}
	writeJSON(c, http.StatusOK, map[string]any{"code": codeOK, "recordings": out})
}

func (u *UI) recordingError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, ErrRecordingNotFound):
		apiError(c, http.StatusNotFound, codeNotFound, "no such recording")
	case errors.Is(err, ErrRecordingBusy):
		apiError(c, http.StatusConflict, codeConflict, "the recording is still being written")
	default:
		u.log.Warn("recording", "err", err)
		apiError(c, http.StatusInternalServerError, http.StatusInternalServerError, "recording: "+scrub(err.Error()))
	}
}

// recordingDownload serves a file with HTTP Range (a player seeks).
func (u *UI) recordingDownload(c *gin.Context) {
	if u.deps.Recordings == nil {
		u.recordingError(c, ErrRecordingNotFound)
		return
	}
	f, r, err := u.deps.Recordings.OpenRecording(c.Param("id"))
	if err != nil {
		u.recordingError(c, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		u.recordingError(c, err)
		return
	}
	name := filepath.Base(r.File)
	ct := "video/mp4"
	if filepath.Ext(name) == ".flv" {
		ct = "video/x-flv"
	}
	h := c.Writer.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "private, no-cache")
	disp := "inline"
	if c.Query("download") != "" {
		disp = "attachment"
	}
	h.Set("Content-Disposition", disp+"; filename="+strconv.Quote(name))
	http.ServeContent(c.Writer, c.Request, name, st.ModTime(), f)
}

func (u *UI) recordingDelete(c *gin.Context) {
	if u.deps.Recordings == nil {
		u.recordingError(c, ErrRecordingNotFound)
		return
	}
	if err := u.deps.Recordings.DeleteRecording(c.Param("id")); err != nil {
		u.recordingError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, map[string]any{"code": codeOK})
}

func (u *UI) recordingsPage(c *gin.Context) {
	servePage(c, "assets/recordings.html")
}

// recordingMetrics writes the DVR's families.
func (u *UI) recordingMetrics(p *promWriter) {
	if u.deps.Recordings == nil {
		return
	}
	s := u.deps.Recordings.RecordingStats()
	p.one("podium_dvr_bytes_total", "counter", "Bytes of recordings written (closed files and those being written).", float64(s.Bytes))
	p.one("podium_dvr_files_total", "counter", "Recordings closed.", float64(s.Files))
	p.one("podium_dvr_failures_total", "counter", "Recording write failures and files not started for lack of disk.", float64(s.Failures))
	p.one("podium_dvr_recording", "gauge", "Files being written now.", float64(s.Recording))
	p.family("podium_dvr_disk_free_bytes", "gauge", "Free disk where a vhost records (-1: unknown).")
	for _, d := range s.Disks {
		p.sample("podium_dvr_disk_free_bytes", float64(d.Free), "vhost", d.Vhost, "dir", d.Dir)
	}
}
