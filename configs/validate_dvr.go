package configs

import (
	"path/filepath"
	"strings"
	"time"
)

// dvr validates a vhost's dvr section (key is vhosts[i].dvr).
func (p *problems) dvr(key string, d *DVR) {
	path := strings.TrimSpace(d.Path)
	switch {
	case path == "":
		p.add(key+".path", "required")
	case strings.ContainsRune(path, 0):
		p.add(key+".path", "contains a NUL byte")
	default:
		ext := strings.ToLower(filepath.Ext(path))
		if ext != ".mp4" && ext != ".flv" {
			p.add(key+".path", "must end in .mp4 or .flv (got %q)", path)
		}
		if bad := unknownPlaceholder(path); bad != "" {
			p.add(key+".path", "unknown placeholder %s (known: %s)", bad, strings.Join(DVRPlaceholders(), " "))
		}
		if strings.HasSuffix(path, "/") || filepath.Base(path) == ext {
			p.add(key+".path", "names no file (got %q)", path)
		}
		if d.Plan == DVRPlanSegment && !strings.Contains(path, "[") {
			p.add(key+".path", "plan segment needs a placeholder ([timestamp] or the time fields) so that files do not overwrite each other")
		}
	}
	p.oneOf(key+".plan", d.Plan, DVRPlanSession, DVRPlanSegment)
	if d.Plan == DVRPlanSegment && d.Duration < Duration(time.Second) {
		p.add(key+".duration", "must be at least 1s for plan segment (got %s)", d.Duration)
	}
	if d.Duration < 0 {
		p.add(key+".duration", "must not be negative")
	}
	if d.Keep < 0 {
		p.add(key+".keep", "must not be negative (0 keeps every recording)")
	}
	if d.MinFree < 0 {
		p.add(key+".min_free", "must not be negative")
	}
}

// unknownPlaceholder returns the first [...] in path that is not a DVR
// placeholder, or "".
func unknownPlaceholder(path string) string {
	known := DVRPlaceholders()
	for {
		i := strings.IndexByte(path, '[')
		if i < 0 {
			return ""
		}
		j := strings.IndexByte(path[i:], ']')
		if j < 0 {
			return path[i:]
		}
		ph := path[i : i+j+1]
		found := false
		for _, k := range known {
			if k == ph {
				found = true
			}
		}
		if !found {
			return ph
		}
		path = path[i+j+1:]
	}
}
