// Package loadgen publishes and plays RTMP in-process (lal's client
// sessions) for the reliability tests and benches, which publish and play
// hundreds or thousands of times: an ffmpeg process per cycle would cost
// more CPU than the server under test.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/httpflv"
	"github.com/q191201771/lal/pkg/remux"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"
)

// Silence turns lal's own logging off (it logs every session at info).
func Silence() {
	if l, err := nazalog.New(func(o *nazalog.Option) {
		o.Level = nazalog.LevelPanic
		o.IsToStdout = false
	}); err == nil {
		lalrtmp.Log = l
		nazalog.SetGlobalLogger(l)
	}
}

// ReadFLV reads an FLV file's tags.
func ReadFLV(path string) ([]httpflv.Tag, error) {
	var r httpflv.FlvFileReader
	if err := r.Open(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer r.Dispose()
	if _, err := r.ReadFlvHeader(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var tags []httpflv.Tag
	for {
		tag, err := r.ReadTag()
		if err != nil {
			break
		}
		tags = append(tags, tag)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("read %s: no tags", path)
	}
	return tags, nil
}

// Publish publishes tags to url. Paced sends them in real time, looping,
// until ctx ends; unpaced sends the first media seconds at once and
// returns. Either way it unpublishes (closes) before returning.
func Publish(ctx context.Context, url string, tags []httpflv.Tag, paced bool, media time.Duration) error {
	ps := lalrtmp.NewPushSession(func(o *lalrtmp.PushSessionOption) {
		o.PushTimeoutMs = 5000
		o.WriteAvTimeoutMs = 5000
	})
	if err := ps.Push(url); err != nil {
		_ = ps.Dispose()
		return fmt.Errorf("push %s: %w", url, err)
	}
	defer ps.Dispose()
	start := time.Now()
	var offset uint32
	for loop := 0; ; loop++ {
		var last uint32
		for _, tag := range tags {
			ts := tag.Header.Timestamp
			if !paced && time.Duration(ts)*time.Millisecond > media {
				return ps.Flush()
			}
			if loop > 0 && (tag.IsAvcKeySeqHeader() || tag.IsAacSeqHeader() || tag.Header.Type == httpflv.TagTypeMetadata) {
				continue
			}
			t := tag
			t.Header.Timestamp = ts + offset
			if paced {
				due := start.Add(time.Duration(t.Header.Timestamp) * time.Millisecond)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Until(due)):
				}
			} else if ctx.Err() != nil {
				return nil
			}
			if err := ps.Write(remux.FlvTag2RtmpChunks(t)); err != nil {
				return fmt.Errorf("push %s: %w", url, err)
			}
			last = ts
		}
		if !paced {
			return ps.Flush()
		}
		offset += last + 40
	}
}

// FirstVideo plays url until the first video message (a picture a player
// could show) and returns how long that took.
func FirstVideo(url string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	got := make(chan struct{})
	var once sync.Once
	ps := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
		o.PullTimeoutMs = int(timeout / time.Millisecond)
		o.ReadAvTimeoutMs = int(timeout / time.Millisecond)
	}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		if msg.Header.MsgTypeId == base.RtmpTypeIdVideo {
			once.Do(func() { close(got) })
		}
	})
	defer ps.Dispose()
	if err := ps.Pull(url); err != nil {
		return 0, fmt.Errorf("play %s: %w", url, err)
	}
	select {
	case <-got:
		return time.Since(start), nil
	case err := <-ps.WaitChan():
		return 0, fmt.Errorf("play %s: ended before video: %w", url, orEOF(err))
	case <-time.After(timeout):
		return 0, fmt.Errorf("play %s: no video within %v", url, timeout)
	}
}

func orEOF(err error) error {
	if err == nil {
		return errors.New("closed")
	}
	return err
}

// Player plays url until ctx ends, reconnecting after a pause when the
// play ends, and counts what it got.
type Player struct {
	mu        sync.Mutex
	bytes     uint64
	videos    uint64
	ends      int // plays that ended before ctx did
	lastVideo time.Time
}

// Run plays until ctx ends.
func (p *Player) Run(ctx context.Context, url string) {
	for ctx.Err() == nil {
		ps := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
			o.PullTimeoutMs = 10000
			o.ReadAvTimeoutMs = 10000
		}).WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
			p.mu.Lock()
			p.bytes += uint64(len(msg.Payload))
			if msg.Header.MsgTypeId == base.RtmpTypeIdVideo {
				p.videos++
				p.lastVideo = time.Now()
			}
			p.mu.Unlock()
		})
		if err := ps.Pull(url); err == nil {
			select {
			case <-ctx.Done():
			case <-ps.WaitChan():
			}
		}
		_ = ps.Dispose()
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.ends++
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// PlayerStats is what a Player got so far.
type PlayerStats struct {
	Bytes, Videos uint64
	Ends          int
	SinceVideo    time.Duration
}

// Stats returns what p got so far.
func (p *Player) Stats() PlayerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PlayerStats{Bytes: p.bytes, Videos: p.videos, Ends: p.ends}
	if !p.lastVideo.IsZero() {
		s.SinceVideo = time.Since(p.lastVideo)
	}
	return s
}

// HTTPRead GETs url and reads its first n bytes (a short HTTP-FLV or HLS
// play): an error unless it answers 200 with at least n bytes.
func HTTPRead(url string, n int64, timeout time.Duration) ([]byte, error) {
	c := http.Client{Timeout: timeout}
	res, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, n))
	if int64(len(b)) < n {
		return b, fmt.Errorf("GET %s: %d of %d bytes: %v", url, len(b), n, err)
	}
	return b, nil
}
