package configs

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DVR records every stream of its vhost to files (SRS's dvr section).
// Path is a template with SRS's placeholders ([vhost] [app] [stream]
// [timestamp] [2006] [01] [02] [15] [04] [05] [999]) ending in .mp4 or
// .flv. Plan session writes one file per publish; segment starts a new
// file every Duration, at a keyframe. Keep deletes recordings older than
// it (0 keeps all); below MinFree free bytes no new file is started.
type DVR struct {
	Enabled  bool     `mapstructure:"enabled" yaml:"enabled"`
	Path     string   `mapstructure:"path" yaml:"path"`
	Plan     string   `mapstructure:"plan" yaml:"plan"`
	Duration Duration `mapstructure:"duration" yaml:"duration"`
	Keep     Duration `mapstructure:"keep" yaml:"keep"`
	MinFree  ByteSize `mapstructure:"min_free" yaml:"min_free"`
}

// DVR plans.
const (
	DVRPlanSession = "session"
	DVRPlanSegment = "segment"
)

// ByteSize is a number of bytes, written in config files like "2GiB",
// "500MB", "64KiB" or a plain number (IEC units are powers of 1024, SI
// units powers of 1000), and printed in the largest IEC unit that divides
// it ("2GiB").
type ByteSize int64

// Bytes returns b as an int64.
func (b ByteSize) Bytes() int64 { return int64(b) }

var byteUnits = []struct {
	name string
	mult int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// String prints b as "2GiB", "512MiB" or "1000".
func (b ByteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b != 0 && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements encoding.TextMarshaler (used by YAML and JSON).
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ErrByteSize is returned (wrapped) by ParseByteSize for text that is not a size.
var ErrByteSize = errors.New(`not a size like "2GiB", "500MB" or "1048576"`)

// ParseByteSize parses "2GiB", "1.5GB", "500M", "64KiB" or "1048576"
// (units are case-insensitive; K, M, G, T alone are IEC).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if len(t) > len(u.name) && strings.EqualFold(t[len(t)-len(u.name):], u.name) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.name)])
			break
		}
	}
	if t == "" || strings.ContainsAny(t, "eEnNiIxX_+-") {
		return 0, fmt.Errorf("%w (got %q)", ErrByteSize, s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("%w (got %q)", ErrByteSize, s)
	}
	v := math.Round(f * float64(mult))
	if v < 0 || v > 1<<62 {
		return 0, fmt.Errorf("%w: out of range (got %q)", ErrByteSize, s)
	}
	return ByteSize(v), nil
}

// DVRPlaceholders are the placeholders a dvr.path may use.
func DVRPlaceholders() []string {
	return []string{"[vhost]", "[app]", "[stream]", "[timestamp]", "[2006]", "[01]", "[02]", "[15]", "[04]", "[05]", "[999]"}
}
