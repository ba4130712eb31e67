package stream

import (
	"log/slog"
	"sync"
	"time"

	"github.com/podiumlive/podium/ingest/media"
)

// ClientInfo describes a publisher or a reader, for stats and hooks.
type ClientInfo struct {
	// Protocol is "rtmp", "rtsp", "transcode", "forward", "hls"...
	Protocol string
	// Remote is the peer address, or a description for internal consumers.
	Remote string
	// Params is the request's query string with secrets removed.
	Params string
	// Forwarded is the number of forward hops the stream already made
	// (0 for an encoder's publish).
	Forwarded int
	// Kick, when set, disconnects this client (the API's kick).
	Kick func()
}

// Stream is one live stream: the publisher's current tracks, metadata, GOP
// cache and readers.
type Stream struct {
	hub       *Hub
	id        uint64
	key       Key
	publisher ClientInfo
	since     time.Time
	log       *slog.Logger

	mu         sync.Mutex
	ended      bool
	video      *media.Track
	audio      *media.Track
	meta       media.Metadata
	metaVer    uint64
	gop        []media.Packet
	pkt        media.Packet // the packet being written (mu)
	gopBytes   int
	gopWaitKey bool // the cache overflowed: dropped until the next keyframe
	readers    []*Reader

	in counters

	sharedMu sync.Mutex
	shared   map[any]any
}

func newStream(h *Hub, id uint64, key Key, info ClientInfo) *Stream {
	return &Stream{
		hub:       h,
		id:        id,
		key:       key,
		publisher: info,
		since:     time.Now(),
		log:       h.log.With("stream", key.String()),
	}
}

// ID is unique for the life of the process; a republish gets a new one.
func (s *Stream) ID() uint64 { return s.id }

// Key is the stream's vhost/app/name.
func (s *Stream) Key() Key { return s.key }

// Publisher describes who publishes the stream.
func (s *Stream) Publisher() ClientInfo { return s.publisher }

// Since is when publishing started.
func (s *Stream) Since() time.Time { return s.since }

// Tracks returns the current video and audio tracks (nil when absent).
func (s *Stream) Tracks() (video, audio *media.Track) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.video, s.audio
}

// Kick disconnects the publisher, if it can be kicked.
func (s *Stream) Kick() bool {
	if s.publisher.Kick == nil {
		return false
	}
	s.publisher.Kick()
	return true
}

func (s *Stream) addReader(info ClientInfo) *Reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	r := newReader(s, info)
	r.meta, r.metaVer = s.meta, s.metaVer
	for i := range s.gop {
		r.push(&s.gop[i], s.video != nil)
	}
	s.readers = append(s.readers, r)
	return r
}

func (s *Stream) removeReader(r *Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.readers {
		if x == r {
			last := len(s.readers) - 1
			s.readers[i] = s.readers[last]
			s.readers[last] = nil
			s.readers = s.readers[:last]
			return
		}
	}
}

// Shared returns the value the stream holds under key, made by mk on the
// first call. Consumers of one stream share work through it (the RTMP
// sinks share each packet's chunked encoding) without the hub knowing what
// it is; it lives as long as the stream. DirectFuncs run one at a time,
// under the stream's lock (Reader.push): a value only they use needs no
// lock of its own.
func (s *Stream) Shared(key any, mk func() any) any {
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	if v, ok := s.shared[key]; ok {
		return v
	}
	if s.shared == nil {
		s.shared = map[any]any{}
	}
	v := mk()
	s.shared[key] = v
	return v
}

// Readers returns the current readers.
func (s *Stream) Readers() []*Reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Reader(nil), s.readers...)
}

func (s *Stream) write(pkt media.Packet) {
	s.in.add(len(pkt.Data), pkt.Track.Kind == media.KindVideo)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	// One Packet per stream, reused under mu, is what readers and their
	// DirectFuncs are handed: they copy what they keep. A Packet per write
	// would be a heap allocation per packet (a DirectFunc's argument
	// escapes).
	s.pkt = pkt
	p := &s.pkt
	switch p.Track.Kind {
	case media.KindVideo:
		s.video = p.Track
	case media.KindAudio:
		s.audio = p.Track
	}
	s.cache(p)
	hasVideo := s.video != nil
	for _, r := range s.readers {
		r.push(p, hasVideo)
	}
	s.pkt = media.Packet{} // drop the payload reference
	s.mu.Unlock()
}

// cache keeps the packets since the last video keyframe.
func (s *Stream) cache(p *media.Packet) {
	if !s.hub.opts.GOPCache || s.video == nil {
		return // audio-only: every packet is a start point; nothing to cache
	}
	if p.IsVideoKey() {
		clear(s.gop) // let the old payloads go
		s.gop = s.gop[:0]
		s.gopBytes = 0
		s.gopWaitKey = false
	} else if len(s.gop) == 0 || s.gopWaitKey {
		return // nothing before the first keyframe
	}
	if len(s.gop) >= s.hub.opts.GOPMaxPackets || s.gopBytes+len(p.Data) > s.hub.opts.GOPMaxBytes {
		clear(s.gop)
		s.gop = s.gop[:0]
		s.gopBytes = 0
		s.gopWaitKey = true
		return
	}
	s.gop = append(s.gop, *p)
	s.gopBytes += len(p.Data)
}

func (s *Stream) setMetadata(m media.Metadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.meta = m
	s.metaVer++
	for _, r := range s.readers {
		r.setMetadata(m, s.metaVer)
	}
}

// Metadata returns the publisher's current metadata.
func (s *Stream) Metadata() media.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta
}

// end stops the stream: readers drain what they have, then get io.EOF.
func (s *Stream) end() {
	if !s.hub.unregister(s) {
		return
	}
	s.mu.Lock()
	s.ended = true
	readers := s.readers
	s.readers = nil
	clear(s.gop)
	s.gop = nil
	s.mu.Unlock()
	for _, r := range readers {
		r.finish()
	}
	s.hub.emit(Event{Type: EventUnpublish, Key: s.key, Stream: s})
}

func (s *Stream) sample(now time.Time) {
	s.in.sample(now)
	for _, r := range s.Readers() {
		r.out.sample(now)
	}
}

// Stats is a snapshot of a stream.
type Stats struct {
	ID        uint64
	Key       Key
	Publisher ClientInfo
	Since     time.Time
	Video     *media.Track
	Audio     *media.Track
	In        CounterStats
	Readers   []ReaderStats
}

// Stats returns a snapshot of the stream and its readers.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		ID: s.id, Key: s.key, Publisher: s.publisher, Since: s.since,
		Video: s.video, Audio: s.audio,
	}
	readers := append([]*Reader(nil), s.readers...)
	s.mu.Unlock()
	st.In = s.in.stats()
	for _, r := range readers {
		st.Readers = append(st.Readers, r.Stats())
	}
	return st
}

// Publisher is the single writer of a stream. Its methods must be called
// from one goroutine.
type Publisher struct {
	st     *Stream
	closed bool
}

// Stream is the stream this publisher writes.
func (p *Publisher) Stream() *Stream { return p.st }

// WritePacket hands p to every reader. It never blocks. p and its Data
// must not be modified afterwards.
func (p *Publisher) WritePacket(pkt media.Packet) {
	if p.closed || pkt.Track == nil {
		return
	}
	p.st.write(pkt)
}

// WriteMetadata replaces the stream's metadata.
func (p *Publisher) WriteMetadata(m media.Metadata) {
	if p.closed {
		return
	}
	p.st.setMetadata(m)
}

// Close ends the stream (unpublish). Readers drain, then get io.EOF.
func (p *Publisher) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.st.end()
}
