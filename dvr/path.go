package dvr

import (
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/podiumlive/podium/ingest/stream"
)

// Template is a dvr.path: SRS's placeholders in a file path. The
// placeholders that come from the publisher ([vhost] [app] [stream]) are
// escaped so that a file can never land outside the template's directory.
type Template struct {
	raw  string
	root string         // the directory before the first placeholder
	ext  string         // ".mp4" or ".flv"
	re   *regexp.Regexp // matches the files the template makes (either extension)
	subs []string       // the placeholder each group of re captures
}

// ErrTemplate is returned (wrapped) for a path that is not a usable template.
var ErrTemplate = errors.New("dvr path template")

// ParseTemplate checks and prepares a dvr.path.
func ParseTemplate(path string) (Template, error) {
	if path == "" || strings.ContainsRune(path, 0) {
		return Template{}, fmt.Errorf("%w: empty or has a NUL byte", ErrTemplate)
	}
	t := Template{raw: path, ext: strings.ToLower(filepath.Ext(path))}
	if t.ext != ".mp4" && t.ext != ".flv" {
		return Template{}, fmt.Errorf("%w: %q must end in .mp4 or .flv", ErrTemplate, path)
	}
	static := path
	if i := strings.IndexByte(path, '['); i >= 0 {
		static = path[:i]
	}
	t.root = filepath.Clean(filepath.Dir(static + "x"))
	var re strings.Builder
	re.WriteByte('^')
	rest := strings.TrimSuffix(filepath.Clean(path), filepath.Ext(path))
	for rest != "" {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			re.WriteString(regexp.QuoteMeta(rest))
			break
		}
		re.WriteString(regexp.QuoteMeta(rest[:i]))
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return Template{}, fmt.Errorf("%w: unclosed [ in %q", ErrTemplate, path)
		}
		ph := rest[i : i+j+1]
		pat, ok := placeholderPattern(ph)
		if !ok {
			return Template{}, fmt.Errorf("%w: unknown placeholder %s", ErrTemplate, ph)
		}
		re.WriteString("(" + pat + ")")
		t.subs = append(t.subs, ph)
		rest = rest[i+j+1:]
	}
	re.WriteString(`(?:-[0-9]+)?\.(?:mp4|flv)$`)
	var err error
	if t.re, err = regexp.Compile(re.String()); err != nil {
		return Template{}, fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	return t, nil
}

func placeholderPattern(ph string) (string, bool) {
	switch ph {
	case "[vhost]", "[app]", "[stream]":
		return `[^/]+`, true
	case "[timestamp]":
		return `[0-9]+`, true
	case "[2006]":
		return `[0-9]{4}`, true
	case "[01]", "[02]", "[15]", "[04]", "[05]":
		return `[0-9]{2}`, true
	case "[999]":
		return `[0-9]{3}`, true
	}
	return "", false
}

// String is the template as configured.
func (t Template) String() string { return t.raw }

// Root is the directory every file of the template lies under.
func (t Template) Root() string { return t.root }

// Ext is ".mp4" or ".flv".
func (t Template) Ext() string { return t.ext }

// Expand returns the file for a stream starting at `at`. The stream's
// names are escaped (EscapeName): the result is always under Root.
func (t Template) Expand(key stream.Key, at time.Time) string {
	r := strings.NewReplacer(
		"[vhost]", EscapeName(key.Vhost),
		"[app]", EscapeName(key.App),
		"[stream]", EscapeName(key.Name),
		"[timestamp]", strconv.FormatInt(at.UnixMilli(), 10),
		"[2006]", fmt.Sprintf("%04d", at.Year()),
		"[01]", fmt.Sprintf("%02d", int(at.Month())),
		"[02]", fmt.Sprintf("%02d", at.Day()),
		"[15]", fmt.Sprintf("%02d", at.Hour()),
		"[04]", fmt.Sprintf("%02d", at.Minute()),
		"[05]", fmt.Sprintf("%02d", at.Second()),
		"[999]", fmt.Sprintf("%03d", at.Nanosecond()/int(time.Millisecond)),
	)
	return filepath.Clean(r.Replace(t.raw))
}

// Match reads back what Expand put into a file name: the stream key's
// parts the template has (others stay ""), and whether name is one of the
// template's files at all.
func (t Template) Match(name string) (stream.Key, bool) {
	m := t.re.FindStringSubmatch(filepath.Clean(name))
	if m == nil {
		return stream.Key{}, false
	}
	var k stream.Key
	for i, ph := range t.subs {
		v := m[i+1]
		switch ph {
		case "[vhost]":
			k.Vhost = UnescapeName(v)
		case "[app]":
			k.App = UnescapeName(v)
		case "[stream]":
			k.Name = UnescapeName(v)
		}
	}
	return k, true
}

// maxEscaped bounds an escaped name (file names are at most 255 bytes).
const maxEscaped = 120

// EscapeName makes a publisher's vhost, app or stream name into one safe
// path element: letters, digits, '_', '-' and '.' (not leading) stay;
// every other byte, a leading '.', '/' and NUL among them, becomes %XX.
// So "..", "a/b" and "\x00" can never climb out of or cut the path. An
// empty name is "_"; a very long one is cut and ends in ~ and a hash.
func EscapeName(s string) string {
	switch s {
	case "":
		return "_"
	case "_":
		return "%5F" // "_" stands for the empty name
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		safe := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || (c == '.' && i > 0)
		if safe {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	out := b.String()
	if len(out) > maxEscaped {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		cut := out[:maxEscaped-9]
		if i := strings.LastIndexByte(cut, '%'); i >= len(cut)-2 {
			cut = cut[:i] // never half an escape
		}
		out = fmt.Sprintf("%s~%08x", cut, h.Sum32())
	}
	return out
}

// UnescapeName undoes EscapeName (a cut name stays as it is).
func UnescapeName(s string) string {
	if s == "_" {
		return ""
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
