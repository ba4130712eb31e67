package ui

import (
	"net"
	"strconv"
	"time"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/avstat"
	"github.com/podiumlive/podium/internal/redact"
)

// The JSON the API serves and the dashboard renders. Field names follow
// SRS's /api/v1 where SRS has the field (id, name, vhost, app, live_ms,
// clients, send_bytes, recv_bytes, kbps, publish, video, audio); the rest
// is Podium's.

// StreamView is one live stream.
type StreamView struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Vhost string `json:"vhost"`
	App   string `json:"app"`
	// Path is vhost/app/stream, the name the forwards and logs use.
	Path string `json:"path"`
	// URL is /app/stream, as SRS gives it.
	URL string `json:"url"`
	// LiveMs is when publishing started, in Unix milliseconds (SRS);
	// Uptime is how long ago, in seconds.
	LiveMs  int64   `json:"live_ms"`
	Uptime  float64 `json:"uptime"`
	Clients int     `json:"clients"` // every reader, internal ones included
	Viewers int     `json:"viewers"` // players only
	// Bytes from the publisher, and to every reader (including readers
	// that left).
	RecvBytes uint64 `json:"recv_bytes"`
	SendBytes uint64 `json:"send_bytes"`
	// Kbps holds SRS's field names but the last second's rates.
	Kbps KbpsView `json:"kbps"`
	// Bitrate is the publisher's bit/s over the last second; FPS its video
	// frames per second.
	Bitrate float64 `json:"bitrate"`
	FPS     float64 `json:"fps"`
	// Dropped counts packets readers were too slow for.
	Dropped uint64       `json:"dropped"`
	Publish PublishView  `json:"publish"`
	Video   *VideoView   `json:"video"`
	Audio   *AudioView   `json:"audio"`
	Output  *OutputView  `json:"output"`
	Source  string       `json:"source,omitempty"` // for a transcode's output: its input's path
	Trans   *TransView   `json:"transcode"`
	Fwd     []FwdView    `json:"forwards"`
	HLS     *HLSView     `json:"hls"`
	Readers []ReaderView `json:"readers"`

	// Recording is true while the DVR writes the stream to a file.
	Recording bool `json:"recording"`
	// Upstream is the origin link of a stream an edge pulls.
	Upstream *UpstreamView `json:"upstream,omitempty"`
}

// KbpsView is SRS's kbps object.
type KbpsView struct {
	Recv float64 `json:"recv_30s"`
	Send float64 `json:"send_30s"`
}

// PublishView describes the publisher.
type PublishView struct {
	Active   bool   `json:"active"`
	Cid      string `json:"cid"` // the publisher's client id in /api/v1/clients
	Protocol string `json:"protocol"`
	IP       string `json:"ip"`
	Remote   string `json:"remote"`
	// Params is the publish URL's query, secrets replaced by "xxx".
	Params    string `json:"params"`
	Forwarded int    `json:"forwarded"` // forward hops before this box
	Kickable  bool   `json:"kickable"`
}

// VideoView is a video track.
type VideoView struct {
	Codec  string `json:"codec"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// AudioView is an audio track.
type AudioView struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channel"`
}

// OutputView is what a transcoded stream becomes.
type OutputView struct {
	Stream string     `json:"stream"` // vhost/app/stream of the output
	ID     string     `json:"id,omitempty"`
	Video  *VideoView `json:"video"`
	Audio  *AudioView `json:"audio"`
}

// TransView is a stream's transcode job.
type TransView struct {
	State         string   `json:"state"`
	Output        string   `json:"output"`
	InputVideo    string   `json:"input_video"`
	InputAudio    string   `json:"input_audio"`
	OutputVideo   string   `json:"output_video"`
	OutputAudio   string   `json:"output_audio"`
	Encoder       string   `json:"encoder"`
	Hardware      bool     `json:"hardware"`
	Fallbacks     []string `json:"fallbacks"`
	Speed         float64  `json:"speed"`
	FramesDecoded uint64   `json:"frames_decoded"`
	FramesEncoded uint64   `json:"frames_encoded"`
	Errors        uint64   `json:"errors"`
	Restarts      int      `json:"restarts"`
	LastError     string   `json:"last_error"`
	Since         int64    `json:"since_ms"`
}

// FwdView is one forward destination of a stream.
type FwdView struct {
	Stream      string  `json:"stream"`
	Destination string  `json:"destination"`
	State       string  `json:"state"`
	LastError   string  `json:"last_error"`
	Reconnects  uint64  `json:"reconnects"`
	Bytes       uint64  `json:"bytes"`
	Bitrate     int64   `json:"bitrate"`
	Dropped     uint64  `json:"dropped"`
	Since       int64   `json:"since_ms"`
	For         float64 `json:"state_seconds"` // how long in this state
	// Member and Moves: a group:NAME destination's current member and
	// how often the stream moved between members.
	Member string `json:"member,omitempty"`
	Moves  uint64 `json:"moves"`
}

// HLSView is a stream's HLS output.
type HLSView struct {
	URL       string `json:"url"`
	Segments  uint64 `json:"segments"`
	Bytes     uint64 `json:"bytes"`
	Dropped   uint64 `json:"dropped"`
	LastError string `json:"last_error"`
}

// ReaderView is one reader of a stream.
type ReaderView struct {
	ID       string  `json:"id"`
	Protocol string  `json:"protocol"`
	Remote   string  `json:"remote"`
	Alive    float64 `json:"alive"`
	Bytes    uint64  `json:"send_bytes"`
	Bitrate  float64 `json:"bitrate"`
	Queued   int     `json:"queued"`
	Dropped  uint64  `json:"dropped"`
}

// ClientView is one entry of /api/v1/clients: a publisher or a reader.
type ClientView struct {
	ID       string   `json:"id"`
	Vhost    string   `json:"vhost"`
	Stream   string   `json:"stream"` // the stream's id
	Path     string   `json:"path"`
	IP       string   `json:"ip"`
	Remote   string   `json:"remote"`
	URL      string   `json:"url"`
	Name     string   `json:"name"`
	Type     string   `json:"type"` // rtmp-publish, rtmp-play, transcode, forward...
	Protocol string   `json:"protocol"`
	Publish  bool     `json:"publish"`
	Alive    float64  `json:"alive"` // seconds
	Send     uint64   `json:"send_bytes"`
	Recv     uint64   `json:"recv_bytes"`
	Kbps     KbpsView `json:"kbps"`
	Params   string   `json:"params,omitempty"`
	Dropped  uint64   `json:"dropped"`
}

// SourceView is one RTSP source.
type SourceView struct {
	URL        string `json:"url"`
	Stream     string `json:"stream"`
	State      string `json:"state"`
	LastError  string `json:"last_error"`
	Reconnects uint64 `json:"reconnects"`
	Bytes      uint64 `json:"bytes"`
	Since      int64  `json:"since_ms"`
}

// internalReaders are the readers that are Podium itself, not viewers.
var internalReaders = map[string]bool{"transcode": true, "forward": true, "hls": true, "dvr": true, "record": true}

// world is one consistent read of every Deps function, indexed for the
// views.
type world struct {
	now     time.Time
	streams []*stream.Stream
	stats   []stream.Stats
	byKey   map[stream.Key]int // index in stats
	trans   map[stream.Key]*avstat.Transcode
	fwds    map[string][]forward.Stats
	hls     map[stream.Key]*HLSStats
	traffic *traffic
	hlsURL  func(stream.Key) string

	rec RecordingStore
	ups map[stream.Key]UpstreamStats
}

func (u *UI) read() *world {
	w := &world{now: time.Now(), traffic: u.traffic, hlsURL: u.deps.HLSURL, rec: u.deps.Recordings, ups: u.readUpstreams()}
	w.streams = u.deps.Hub.Streams()
	w.stats = make([]stream.Stats, len(w.streams))
	w.byKey = make(map[stream.Key]int, len(w.streams))
	for i, st := range w.streams {
		w.stats[i] = st.Stats()
		w.byKey[w.stats[i].Key] = i
	}
	if u.deps.Transcodes != nil {
		ts := u.deps.Transcodes()
		w.trans = make(map[stream.Key]*avstat.Transcode, len(ts))
		for i := range ts {
			w.trans[ts[i].Input] = &ts[i]
		}
	}
	if u.deps.Forwards != nil {
		fs := u.deps.Forwards()
		w.fwds = make(map[string][]forward.Stats)
		for _, f := range fs {
			w.fwds[f.Stream] = append(w.fwds[f.Stream], f)
		}
	}
	if u.deps.HLS != nil {
		hs := u.deps.HLS()
		w.hls = make(map[stream.Key]*HLSStats, len(hs))
		for i := range hs {
			w.hls[hs[i].Stream] = &hs[i]
		}
	}
	return w
}

// streamViews builds every stream's view, ordered by id.
func (w *world) streamViews() []StreamView {
	out := make([]StreamView, len(w.stats))
	for i := range w.stats {
		out[i] = w.view(i)
	}
	return out
}

func (w *world) view(i int) StreamView {
	st := &w.stats[i]
	k := st.Key
	path := k.String()
	id := strconv.FormatUint(st.ID, 10)
	tr := w.traffic.stream(st.ID)
	v := StreamView{
		ID: id, Name: k.Name, Vhost: k.Vhost, App: k.App, Path: path,
		URL:       "/" + k.App + "/" + k.Name,
		LiveMs:    st.Since.UnixMilli(),
		Uptime:    round2(w.now.Sub(st.Since).Seconds()),
		Clients:   len(st.Readers),
		RecvBytes: st.In.Bytes,
		SendBytes: tr.Out,
		Dropped:   tr.Dropped,
		Bitrate:   st.In.Bitrate,
		FPS:       round2(st.In.FPS),
		Video:     videoView(st.Video),
		Audio:     audioView(st.Audio),
		Publish: PublishView{
			Active: true, Cid: id + ".p",
			Protocol: st.Publisher.Protocol, Remote: scrub(st.Publisher.Remote),
			IP: hostOf(st.Publisher.Remote), Params: scrub(st.Publisher.Params),
			Forwarded: st.Publisher.Forwarded, Kickable: st.Publisher.Kick != nil,
		},
		Fwd:     []FwdView{},
		Readers: make([]ReaderView, 0, len(st.Readers)),
	}
	if st.Publisher.Protocol == "transcode" {
		v.Source = st.Publisher.Remote
		v.Publish.IP = ""
	}
	if up, ok := w.ups[k]; ok {
		v.Upstream = upstreamView(up)
	}
	var sendRate float64
	var lastDrops uint64
	for j, r := range st.Readers {
		if !internalReaders[r.Info.Protocol] {
			v.Viewers++
		}
		sendRate += r.Out.Bitrate
		lastDrops += r.Dropped
		v.Readers = append(v.Readers, ReaderView{
			ID: id + "." + strconv.Itoa(j), Protocol: r.Info.Protocol, Remote: scrub(r.Info.Remote),
			Alive: round2(w.now.Sub(r.Since).Seconds()), Bytes: r.Out.Bytes, Bitrate: r.Out.Bitrate,
			Queued: r.Queued, Dropped: r.Dropped,
		})
	}
	if v.Dropped < lastDrops { // before the first traffic sample
		v.Dropped = lastDrops
	}
	v.Kbps = KbpsView{Recv: round2(st.In.Bitrate / 1000), Send: round2(sendRate / 1000)}
	if t := w.trans[k]; t != nil {
		v.Trans = transView(t)
		out := &OutputView{Stream: t.Output.String()}
		if j, ok := w.byKey[t.Output]; ok {
			o := &w.stats[j]
			out.ID = strconv.FormatUint(o.ID, 10)
			out.Video, out.Audio = videoView(o.Video), audioView(o.Audio)
		}
		v.Output = out
	}
	for _, f := range w.fwds[path] {
		v.Fwd = append(v.Fwd, fwdView(f, w.now))
	}
	if w.rec != nil {
		v.Recording = w.rec.IsRecording(k)
	}
	if h := w.hls[k]; h != nil {
		v.HLS = &HLSView{URL: h.URL, Segments: h.Segments, Bytes: h.Bytes, Dropped: h.Dropped, LastError: scrub(h.LastError)}
		if v.HLS.URL == "" && w.hlsURL != nil {
			v.HLS.URL = w.hlsURL(k)
		}
	} else if w.hlsURL != nil {
		if u := w.hlsURL(k); u != "" {
			v.HLS = &HLSView{URL: u}
		}
	}
	return v
}

func (w *world) clients() []ClientView {
	var out []ClientView
	for i := range w.stats {
		st := &w.stats[i]
		k := st.Key
		id := strconv.FormatUint(st.ID, 10)
		url := "/" + k.App + "/" + k.Name
		p := st.Publisher
		out = append(out, ClientView{
			ID: id + ".p", Vhost: k.Vhost, Stream: id, Path: k.String(), URL: url, Name: k.Name,
			IP: hostOf(p.Remote), Remote: scrub(p.Remote), Type: p.Protocol + "-publish", Protocol: p.Protocol,
			Publish: true, Alive: round2(w.now.Sub(st.Since).Seconds()), Recv: st.In.Bytes,
			Kbps: KbpsView{Recv: round2(st.In.Bitrate / 1000)}, Params: scrub(p.Params),
		})
		for j, r := range st.Readers {
			typ := r.Info.Protocol
			if !internalReaders[typ] {
				typ += "-play"
			}
			out = append(out, ClientView{
				ID: id + "." + strconv.Itoa(j), Vhost: k.Vhost, Stream: id, Path: k.String(), URL: url, Name: k.Name,
				IP: hostOf(r.Info.Remote), Remote: scrub(r.Info.Remote), Type: typ, Protocol: r.Info.Protocol,
				Alive: round2(w.now.Sub(r.Since).Seconds()), Send: r.Out.Bytes,
				Kbps: KbpsView{Send: round2(r.Out.Bitrate / 1000)}, Params: scrub(r.Info.Params), Dropped: r.Dropped,
			})
		}
	}
	if out == nil {
		out = []ClientView{}
	}
	return out
}

func videoView(t *media.Track) *VideoView {
	if t == nil {
		return nil
	}
	return &VideoView{Codec: t.Codec.String(), Width: t.Width, Height: t.Height}
}

func audioView(t *media.Track) *AudioView {
	if t == nil {
		return nil
	}
	return &AudioView{Codec: t.Codec.String(), SampleRate: t.SampleRate, Channels: t.Channels}
}

func transView(t *avstat.Transcode) *TransView {
	return &TransView{
		State: string(t.State), Output: t.Output.String(),
		InputVideo: t.InputVideo, InputAudio: t.InputAudio,
		OutputVideo: t.OutputVideo, OutputAudio: t.OutputAudio,
		Encoder: t.Encoder, Hardware: t.Hardware, Fallbacks: scrubAll(t.Fallbacks),
		Speed: round2(t.Speed), FramesDecoded: t.FramesDecoded, FramesEncoded: t.FramesEncoded,
		Errors: t.Errors, Restarts: t.Restarts, LastError: scrub(t.LastError), Since: t.Since.UnixMilli(),
	}
}

func fwdView(f forward.Stats, now time.Time) FwdView {
	return FwdView{
		Stream: f.Stream, Destination: scrub(f.Destination), State: string(f.State),
		LastError: scrub(f.LastError), Reconnects: f.Reconnects, Bytes: f.Bytes,
		Bitrate: f.Bitrate, Dropped: f.Dropped, Since: f.Since.UnixMilli(),
		For: round2(now.Sub(f.Since).Seconds()), Member: f.Member, Moves: f.Moves,
	}
}

func sourceView(s SourceStats) SourceView {
	return SourceView{
		URL: scrub(s.URL), Stream: s.Stream.String(), State: s.State, LastError: scrub(s.LastError),
		Reconnects: s.Reconnects, Bytes: s.Bytes, Since: s.Since.UnixMilli(),
	}
}

// hostOf returns the IP of a host:port, or "" when remote is not one.
func hostOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// Secrets never leave through the UI, whatever a producer forgot to
// redact: every free-text field goes through redact.Text.
func scrub(s string) string { return redact.Text(s) }

func scrubAll(ss []string) []string { return redact.Texts(ss) }
