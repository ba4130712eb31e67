package dvr

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
)

// flvWriter records one FLV file with the flv package's TagWriter (the
// tags HTTP-FLV sends). Tags are gathered in memory and written at least
// every fragmentSpan; what is on disk always ends on a whole tag, so a
// crash leaves a file that plays to its last write.
type flvWriter struct {
	f         *os.File
	path      string
	off       int64
	buf       []byte
	tags      flv.TagWriter
	firstDTS  time.Duration
	lastDTS   time.Duration
	started   bool
	lastWrite time.Duration
	lastSync  time.Duration
}

// newFLVWriter creates path with the FLV header and the publisher's
// metadata.
func newFLVWriter(path string, v, a *media.Track, meta media.Metadata) (*flvWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := &flvWriter{f: f, path: path}
	w.buf = flv.AppendHeader(w.buf, v != nil, a != nil)
	if len(meta) == 0 {
		meta = flv.TrackMetadata(v, a)
	}
	w.buf = w.tags.AppendMetadata(w.buf, meta, 1)
	if err := w.writeOut(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return w, nil
}

func (w *flvWriter) writeOut() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		// WriteAt may have written part of it (and may not say so):
		// cut back to the last whole fragment.
		_ = w.f.Truncate(w.off)
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// write adds one packet's tag in memory (DTS on the file's timeline);
// flush writes the tags out when due says so.
func (w *flvWriter) write(p *media.Packet) error {
	if !w.started {
		w.firstDTS, w.started = p.DTS, true
	}
	w.lastDTS = max(w.lastDTS, p.DTS)
	w.buf = w.tags.AppendPacket(w.buf, p)
	return nil
}

// due reports whether fragmentSpan of tags waits to be written.
func (w *flvWriter) due() bool { return len(w.buf) > 0 && w.lastDTS-w.lastWrite >= fragmentSpan }

// flush writes the gathered tags (and syncs every syncSpan).
func (w *flvWriter) flush() error {
	w.lastWrite = w.lastDTS
	if err := w.writeOut(); err != nil {
		return err
	}
	if w.lastDTS-w.lastSync >= syncSpan {
		w.lastSync = w.lastDTS
		if err := fdatasync(w.f); err != nil {
			return fmt.Errorf("sync %s: %w", w.path, err)
		}
	}
	return nil
}

func (w *flvWriter) size() int64 { return w.off }

func (w *flvWriter) duration() time.Duration {
	if !w.started {
		return 0
	}
	return w.lastDTS - w.firstDTS
}

// finish writes what is pending (when flush) and renames the file to final.
func (w *flvWriter) finish(final string, flush bool) (bool, error) {
	var err error
	if flush {
		err = w.writeOut()
	}
	if err == nil && flush {
		err = fdatasync(w.f)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if !w.started {
		_ = os.Remove(w.path)
		return false, errNoSamples
	}
	if rerr := os.Rename(w.path, final); rerr != nil {
		return false, fmt.Errorf("rename %s: %w", w.path, rerr)
	}
	return false, err
}

// flvDuration reads an FLV file's duration from its last tag.
func flvDuration(f io.ReaderAt, size int64) (time.Duration, error) {
	var b [11]byte
	if size < 13+15 {
		return 0, nil
	}
	if _, err := f.ReadAt(b[:4], size-4); err != nil {
		return 0, err
	}
	n := int64(binary.BigEndian.Uint32(b[:4]))
	if n < 11 || n > size-13 {
		return 0, fmt.Errorf("flv: bad last tag size %d", n)
	}
	if _, err := f.ReadAt(b[:], size-4-n); err != nil {
		return 0, err
	}
	ms := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24
	return time.Duration(ms) * time.Millisecond, nil
}
