package dvr

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync puts a file's data on the disk (not its mtime): what a power
// loss keeps.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
