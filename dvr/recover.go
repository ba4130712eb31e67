package dvr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/podiumlive/podium/internal/safe"
)

// scanFMP4 reads the sample tables of a fragmented MP4 that may end in a
// cut fragment (a crash): every whole moof+mdat counts, the rest is
// ignored. What a crash left may be any bytes: mediacommon's parsers run
// under safe.Parse.
func scanFMP4(path string) ([]*mp4Track, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	var tracks []*mp4Track
	byID := map[uint32]*mp4Track{}
	var moofAt, moofSize int64 = -1, 0
	for off := int64(0); off+8 <= size; {
		var h [16]byte
		if _, err := f.ReadAt(h[:8], off); err != nil {
			break
		}
		bsize, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		typ := string(h[4:8])
		if bsize == 1 {
			if _, err := f.ReadAt(h[8:16], off+8); err != nil {
				break
			}
			bsize, hdr = int64(binary.BigEndian.Uint64(h[8:16])), 16
		} else if bsize == 0 {
			bsize = size - off
		}
		if bsize < hdr || off+bsize > size {
			break // cut by the crash
		}
		switch typ {
		case "moov":
			var init fmp4.Init
			if err := safe.Parse(func() error { return init.Unmarshal(io.NewSectionReader(f, 0, off+bsize)) }); err != nil {
				return nil, fmt.Errorf("%s: init: %w", path, err)
			}
			for _, it := range init.Tracks {
				t := &mp4Track{id: it.ID, timescale: it.TimeScale, codec: it.Codec, video: it.Codec.IsVideo(), first: -1}
				tracks = append(tracks, t)
				byID[uint32(it.ID)] = t
			}
		case "moof":
			moofAt, moofSize = off, bsize
		case "mdat":
			if moofAt < 0 || moofAt+moofSize != off {
				break
			}
			if err := readFragment(f, moofAt, off+bsize-moofAt, byID); err != nil {
				return tracks, nil // keep what came before a broken fragment
			}
			moofAt = -1
		}
		off += bsize
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%s: no moov", path)
	}
	return tracks, nil
}

func readFragment(f *os.File, at, n int64, byID map[uint32]*mp4Track) error {
	if n > 256<<20 {
		return errors.New("fragment too big")
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, at); err != nil {
		return err
	}
	var parts fmp4.Parts
	if err := safe.Parse(func() error { return parts.Unmarshal(buf) }); err != nil {
		return err
	}
	for _, p := range parts {
		for _, pt := range p.Tracks {
			t := byID[uint32(pt.ID)]
			if t == nil {
				continue
			}
			dts := int64(pt.BaseTime)
			if t.first < 0 {
				t.first = dts
			}
			for _, s := range pt.Samples {
				off := at + int64(cap(buf)-cap(s.Payload))
				t.table = append(t.table, sampleRef{off: off, size: uint32(len(s.Payload)), dur: s.Duration, cts: s.PTSOffset, sync: !s.IsNonSyncSample})
				dts += int64(s.Duration)
			}
			t.end = dts
		}
	}
	return nil
}

// recoverMP4 finalizes a fragmented file a crash left at src into dst.
func recoverMP4(src, dst string) error {
	tracks, err := scanFMP4(src)
	if err != nil {
		return err
	}
	empty := true
	for _, t := range tracks {
		if len(t.table) > 0 {
			empty = false
		}
	}
	if empty {
		_ = os.Remove(src)
		return errNoSamples
	}
	_, err = finalizeMP4(src, dst, tracks)
	return err
}

// mp4Duration reads a recording's duration: from the mvhd of a
// progressive file, or by walking the fragments of a fragmented one.
func mp4Duration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	d, err := mvhdDuration(f)
	_ = f.Close()
	if err == nil && d > 0 {
		return d, nil
	}
	tracks, err := scanFMP4(path)
	if err != nil {
		return 0, err
	}
	for _, t := range tracks {
		if t.first >= 0 && t.timescale > 0 {
			d = max(d, time.Duration(t.end-t.first)*time.Second/time.Duration(t.timescale))
		}
	}
	return d, nil
}

// mvhdDuration reads moov/mvhd's duration (0 in a fragmented file).
func mvhdDuration(f io.ReaderAt) (time.Duration, error) {
	var h [32]byte
	box := func(off int64) (size int64, typ string, err error) {
		if _, err := f.ReadAt(h[:8], off); err != nil {
			return 0, "", err
		}
		return int64(binary.BigEndian.Uint32(h[:4])), string(h[4:8]), nil
	}
	for off := int64(0); ; {
		size, typ, err := box(off)
		if err != nil {
			return 0, err
		}
		if size < 8 {
			return 0, errors.New("no moov")
		}
		if typ != "moov" {
			off += size
			continue
		}
		size, typ, err = box(off + 8)
		if err != nil || typ != "mvhd" || size < 32 {
			return 0, errors.New("no mvhd")
		}
		if _, err := f.ReadAt(h[:], off+16); err != nil {
			return 0, err
		}
		var scale, dur uint64
		if h[0] == 1 { // version 1: 64-bit times
			var b [12]byte
			if _, err := f.ReadAt(b[:], off+16+20); err != nil {
				return 0, err
			}
			scale, dur = uint64(binary.BigEndian.Uint32(b[:4])), binary.BigEndian.Uint64(b[4:])
		} else {
			scale, dur = uint64(binary.BigEndian.Uint32(h[12:16])), uint64(binary.BigEndian.Uint32(h[16:20]))
		}
		if scale == 0 {
			return 0, errors.New("mvhd timescale 0")
		}
		return time.Duration(dur * uint64(time.Second) / scale), nil
	}
}
