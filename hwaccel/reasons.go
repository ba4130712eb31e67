package hwaccel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dlopenError turns dlerror's text into an error: errLibMissing when the
// loader found no such file, the text itself otherwise (wrong
// architecture, missing dependency, permission).
func dlopenError(msg string) error {
	if strings.Contains(msg, "No such file or directory") {
		return fmt.Errorf("%s: %w", msg, errLibMissing)
	}
	return errors.New(msg)
}

// libraryReason says why lib does not load and what to do, given the
// hint for a missing one; "" when it loads.
func libraryReason(lib string, err error, missingHint string) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errLibMissing):
		return lib + " not found: " + missingHint
	}
	return fmt.Sprintf("%s does not load (%v): reinstall the driver that provides it", lib, err)
}

// defaultRenderNode is the render node libav opens first.
const defaultRenderNode = "/dev/dri/renderD128"

// renderNodes lists the GPU render nodes of this box, sorted.
func renderNodes() []string {
	nodes, _ := filepath.Glob("/dev/dri/renderD*")
	sort.Strings(nodes)
	return nodes
}

// nodeReason says why the render node path cannot be used by this
// process; "" when it can be opened for reading and writing.
func nodeReason(path string) string {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return ""
	}
	return nodeError(path, err)
}

// nodeError words an error from opening a render node.
func nodeError(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " not found: no GPU render node, or map /dev/dri into the container (--device /dev/dri)"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied on " + path + ": add the user to the render group (usermod -aG render USER; in a container --group-add render)"
	}
	return fmt.Sprintf("cannot open %s: %v", path, err)
}

// gpuVendor reads the PCI vendor of the GPU behind a render node, e.g.
// "0x8086" (Intel), "0x10de" (NVIDIA), "0x1002" (AMD); "" when unknown.
func gpuVendor(node string) string {
	b, err := os.ReadFile(filepath.Join("/sys/class/drm", filepath.Base(node), "device", "vendor"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// vendorName names a PCI vendor id.
func vendorName(id string) string {
	switch strings.ToLower(id) {
	case "0x8086":
		return "Intel"
	case "0x10de":
		return "NVIDIA"
	case "0x1002":
		return "AMD"
	}
	return "vendor " + id
}

// errText is err's text for matching, lowercased; "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.ToLower(err.Error())
}
