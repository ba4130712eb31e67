// Package transcode is Podium's transcode engine: every stream published
// on a vhost that has `transcode` gets a pipeline (decode, resample/scale,
// encode with go-astiav) whose output is an ordinary stream on the target
// vhost, so forward and HLS treat it like any publish.
package transcode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/backoff"
)

// Settings is one vhost's transcode configuration, resolved.
type Settings struct {
	To, Suffix string

	AudioCodec   string // aac | copy
	AudioBitrate int64
	SampleRate   int // 0 = keep
	Channels     int // 0 = keep

	VideoCodec    string // copy | h264
	VideoBitrate  int64
	Width, Height int
	FPS           int
	GOP           time.Duration
	Profile       string
	Preset        string

	// Backends are the video encoders to try, in order (software last).
	Backends []hwaccel.Backend
	Device   string
}

// SettingsFrom resolves a vhost's transcode section.
func SettingsFrom(t *configs.Transcode, hw configs.HWAccel) Settings {
	return Settings{
		To: t.To, Suffix: t.Suffix,
		AudioCodec: t.Audio.Codec, AudioBitrate: int64(t.Audio.Bitrate.BitsPerSecond()),
		SampleRate: t.Audio.SampleRate, Channels: t.Audio.Channels,
		VideoCodec: t.Video.Codec, VideoBitrate: int64(t.Video.Bitrate.BitsPerSecond()),
		Width: t.Video.Width, Height: t.Video.Height, FPS: t.Video.FPS, GOP: t.Video.GOP.Std(),
		Profile: t.Video.Profile, Preset: t.Video.Preset,
		Backends: hwaccel.Chain(hw.Prefer), Device: hw.Device,
	}
}

// Engine starts a job for each stream published on a transcoding vhost.
type Engine struct {
	hub      *stream.Hub
	log      *slog.Logger
	settings func(vhost string) (Settings, bool)

	mu   sync.Mutex
	ctx  context.Context
	jobs map[uint64]*job // by input stream id
	wg   sync.WaitGroup
}

// NewEngine makes an engine; settings returns a vhost's transcode settings
// (false when the vhost does not transcode).
func NewEngine(hub *stream.Hub, settings func(vhost string) (Settings, bool), log *slog.Logger) *Engine {
	return &Engine{hub: hub, log: log, settings: settings, jobs: make(map[uint64]*job)}
}

// Start listens for publishes until ctx ends; Wait then waits for the jobs.
func (e *Engine) Start(ctx context.Context) {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	e.hub.Listen(e.onEvent)
}

// Wait returns when every job has ended (after the Start context ends).
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) onEvent(ev stream.Event) {
	if ev.Type != stream.EventPublish && ev.Type != stream.EventUnpublish {
		return
	}
	st := ev.Stream
	if ev.Type == stream.EventUnpublish {
		e.mu.Lock()
		if j := e.jobs[st.ID()]; j != nil && j.isDone() {
			delete(e.jobs, st.ID())
		}
		e.mu.Unlock()
		return
	}
	s, ok := e.settings(st.Key().Vhost)
	if !ok {
		return
	}
	e.mu.Lock()
	ctx := e.ctx
	e.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return
	}
	in := st.Key()
	outKey := stream.Key{Vhost: s.To, App: in.App, Name: in.Name + s.Suffix}
	log := e.log.With("stream", in.String(), "to", outKey.String())
	// Subscribe here, inside the publish event, so no packet is missed.
	r, err := e.hub.Subscribe(ctx, in, stream.ClientInfo{Protocol: "transcode", Remote: outKey.String()}, 0)
	if err != nil {
		log.Warn("transcode: input gone before start", "err", err)
		return
	}
	out, err := e.hub.Publish(outKey, stream.ClientInfo{
		Protocol: "transcode", Remote: in.String(), Params: st.Publisher().Params,
		Forwarded: st.Publisher().Forwarded,
	})
	if err != nil {
		r.Close()
		log.Error("transcode: cannot publish output", "err", err)
		return
	}
	j := &job{s: s, in: r, out: out, log: log, done: make(chan struct{})}
	j.stats.s = Stats{Input: in, Output: outKey, State: StateStarting, Since: time.Now()}
	e.mu.Lock()
	e.jobs[st.ID()] = j
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		j.run(ctx)
		e.mu.Lock()
		if e.hub.ByID(st.ID()) == nil { // the input is gone: forget the job
			delete(e.jobs, st.ID())
		}
		e.mu.Unlock()
	}()
}

// Stats lists every job, ordered by input name.
func (e *Engine) Stats() []Stats {
	e.mu.Lock()
	out := make([]Stats, 0, len(e.jobs))
	for _, j := range e.jobs {
		out = append(out, j.stats.snapshot())
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Input.String() < out[k].Input.String() })
	return out
}

// job supervises the pipeline of one stream: it restarts a failed pipeline
// with capped exponential backoff and gives up (state failed) after three
// failures within a minute.
type job struct {
	s     Settings
	in    *stream.Reader
	out   *stream.Publisher
	log   *slog.Logger
	stats jobStats
	done  chan struct{}
}

const (
	maxFailures   = 3
	failureWindow = time.Minute
	backoffMin    = 250 * time.Millisecond
	backoffMax    = 10 * time.Second
)

func (j *job) isDone() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

func (j *job) run(ctx context.Context) {
	defer close(j.done)
	defer j.in.Close()
	defer j.out.Close()
	j.log.Info("transcode started")
	var failures []time.Time
	retry := backoff.Backoff{Min: backoffMin, Max: backoffMax, Jitter: 0.25}
	for {
		j.stats.update(func(s *Stats) { s.State = StateRunning })
		err := newPipeline(j.s, j.in, j.out, j.log, &j.stats).run(ctx)
		if errors.Is(err, io.EOF) || errors.Is(err, stream.ErrReaderClosed) || ctx.Err() != nil {
			j.stats.update(func(s *Stats) { s.State = StateStopped })
			j.log.Info("transcode ended")
			return
		}
		now := time.Now()
		failures = append(failures, now)
		for len(failures) > 0 && now.Sub(failures[0]) > failureWindow {
			failures = failures[1:]
		}
		if len(failures) >= maxFailures {
			j.stats.update(func(s *Stats) { s.State, s.LastError = StateFailed, err.Error() })
			j.log.Error("transcode failed: giving up", "failures", len(failures), "err", err)
			return
		}
		delay := retry.Next()
		j.stats.update(func(s *Stats) {
			s.State, s.LastError = StateRestarting, err.Error()
			s.Restarts++
		})
		j.log.Warn("transcode restarting", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
