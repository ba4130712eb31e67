package hls

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeAtomic writes data to name through a temp file in the same
// directory and a rename, so a reader sees the old file or the new one,
// never half of one. The temp name starts with a dot: the HTTP handler
// never serves it. Only one goroutine writes a stream's files at a time,
// so the temp name only has to be unique per target.
func writeAtomic(name string, data []byte) error {
	dir, base := filepath.Split(name)
	tmp := filepath.Join(dir, "."+base+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, werr)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
