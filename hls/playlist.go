package hls

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/grafov/m3u8"
)

// stateFile holds a stream's playlist state next to its segments, so the
// media sequence never goes back, across a republish or a restart.
const stateFile = ".state.json"

// segment is one listed (or retired, still on disk) segment.
type segment struct {
	Seq      uint64    `json:"seq"`
	Name     string    `json:"name"` // file name in the stream's directory
	Duration float64   `json:"duration"`
	Disc     bool      `json:"disc,omitempty"` // EXT-X-DISCONTINUITY before it
	Time     time.Time `json:"time"`           // EXT-X-PROGRAM-DATE-TIME
	Init     string    `json:"init,omitempty"` // fMP4: its EXT-X-MAP
	Size     int64     `json:"size"`
}

// state is a stream's playlist: what is listed, what is still on disk, and
// the counters that must never go back.
type state struct {
	Variant    string    `json:"variant"`
	NextSeq    uint64    `json:"next_seq"`
	DiscSeq    uint64    `json:"disc_seq"`
	NextPeriod uint64    `json:"next_period"`
	Target     int       `json:"target"`    // EXT-X-TARGETDURATION: only grows
	NextTime   int64     `json:"next_time"` // 90 kHz: where the next period's timeline starts
	Segments   []segment `json:"segments"`
	Retired    []segment `json:"retired,omitempty"` // off the playlist, kept for slow players
}

// add lists seg, slides the window and returns the files that left the
// disk budget (window + keep) and must be deleted.
func (st *state) add(seg segment, window, keep int) (remove []string) {
	st.Segments = append(st.Segments, seg)
	for len(st.Segments) > window {
		old := st.Segments[0]
		st.Segments = st.Segments[1:]
		if old.Disc {
			// Its EXT-X-DISCONTINUITY leaves the playlist (RFC 8216 6.2.2).
			st.DiscSeq++
		}
		st.Retired = append(st.Retired, old)
	}
	for len(st.Retired) > keep {
		old := st.Retired[0]
		st.Retired = st.Retired[1:]
		remove = append(remove, old.Name)
		if old.Init != "" && !st.uses(old.Init) {
			remove = append(remove, old.Init)
		}
	}
	// Let the backing arrays go now and then.
	if cap(st.Segments) > 4*window+16 {
		st.Segments = append([]segment(nil), st.Segments...)
	}
	if cap(st.Retired) > 4*keep+16 {
		st.Retired = append([]segment(nil), st.Retired...)
	}
	return remove
}

func (st *state) uses(init string) bool {
	for _, s := range st.Segments {
		if s.Init == init {
			return true
		}
	}
	for _, s := range st.Retired {
		if s.Init == init {
			return true
		}
	}
	return false
}

// bytes is what the listed and retired segments hold on disk.
func (st *state) bytes() int64 {
	var n int64
	for _, s := range st.Segments {
		n += s.Size
	}
	for _, s := range st.Retired {
		n += s.Size
	}
	return n
}

// encode writes the live playlist. Segment URIs are dir/NAME, relative to
// the playlist; args (e.g. "vhost=x") is appended to each.
func (st *state) encode(dir, args string) ([]byte, error) {
	n := uint(max(1, len(st.Segments)))
	p, err := m3u8.NewMediaPlaylist(n, n)
	if err != nil {
		return nil, fmt.Errorf("playlist: %w", err)
	}
	if len(st.Segments) > 0 {
		p.SeqNo = st.Segments[0].Seq
	} else {
		p.SeqNo = st.NextSeq
	}
	p.DiscontinuitySeq = st.DiscSeq
	p.Args = args
	for i := range st.Segments {
		s := &st.Segments[i]
		ms := &m3u8.MediaSegment{
			URI:             dir + "/" + s.Name,
			Duration:        s.Duration,
			Discontinuity:   s.Disc,
			ProgramDateTime: s.Time,
		}
		if s.Init != "" {
			uri := dir + "/" + s.Init
			if args != "" {
				uri += "?" + args
			}
			ms.Map = &m3u8.Map{URI: uri}
		}
		if err := p.AppendSegment(ms); err != nil {
			return nil, fmt.Errorf("playlist: %w", err)
		}
	}
	// After AppendSegment, which raises it to the longest segment.
	p.TargetDuration = math.Max(p.TargetDuration, float64(st.Target))
	if st.Variant == VariantFMP4 {
		p.SetVersion(6) // EXT-X-MAP without I-frames only
	} else {
		p.SetVersion(3) // decimal EXTINF
	}
	return p.Encode().Bytes(), nil
}

// loadState reads dir/.state.json; a missing file is a fresh state.
func loadState(dir string) (state, time.Time, error) {
	var st state
	name := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return st, time.Time{}, nil
	}
	if err != nil {
		return st, time.Time{}, fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, time.Time{}, fmt.Errorf("parse %s: %w", name, err)
	}
	var mtime time.Time
	if fi, err := os.Stat(name); err == nil {
		mtime = fi.ModTime()
	}
	return st, mtime, nil
}

func (st *state) save(dir string, write func(string, []byte) error) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode hls state: %w", err)
	}
	return write(filepath.Join(dir, stateFile), b)
}
