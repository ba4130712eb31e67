package configs

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bitrate is a bit rate in bits per second. It is written in config files
// like "64k", "1500k" or "2M" (decimal multiples: k = 1000, M = 1000000)
// or as a plain number of bits per second, and printed back in the
// shortest of those forms ("64k", "1500k", "2M").
type Bitrate int64

// BitsPerSecond returns b as a plain int.
func (b Bitrate) BitsPerSecond() int { return int(b) }

// String prints b as "2M", "1500k" or "999".
func (b Bitrate) String() string {
	switch {
	case b != 0 && b%1_000_000 == 0:
		return strconv.FormatInt(int64(b/1_000_000), 10) + "M"
	case b != 0 && b%1000 == 0:
		return strconv.FormatInt(int64(b/1000), 10) + "k"
	default:
		return strconv.FormatInt(int64(b), 10)
	}
}

// MarshalText implements encoding.TextMarshaler (used by YAML and JSON).
func (b Bitrate) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Bitrate) UnmarshalText(text []byte) error {
	v, err := ParseBitrate(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ErrBitrate is returned (wrapped) by ParseBitrate for text that is not a bitrate.
var ErrBitrate = errors.New(`not a bitrate like "64k", "1500k" or "2M"`)

// ParseBitrate parses "64k", "1500K", "2M", "1.5M" or "128000".
// An optional "bps" suffix is accepted ("64kbps").
func ParseBitrate(s string) (Bitrate, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "bps"), "b/s")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1e3, t[:n-1]
		case 'm', 'M':
			mult, t = 1e6, t[:n-1]
		case 'g', 'G':
			mult, t = 1e9, t[:n-1]
		}
	}
	if t == "" || strings.ContainsAny(t, "eEnNiIxX_+") {
		return 0, fmt.Errorf("%w (got %q)", ErrBitrate, s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("%w (got %q)", ErrBitrate, s)
	}
	v := math.Round(f * mult)
	if v < 0 || v > math.MaxInt32*1000 {
		return 0, fmt.Errorf("%w: out of range (got %q)", ErrBitrate, s)
	}
	return Bitrate(v), nil
}

// Duration is a time.Duration written in config files like "2s", "500ms"
// or "1m30s" (time.ParseDuration syntax). Whole seconds print as "120s".
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String prints whole days as "30d", whole seconds as "120s", anything
// else as time.Duration does.
func (d Duration) String() string {
	td := time.Duration(d)
	if day := 24 * time.Hour; td >= day && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	if td%time.Second == 0 {
		return strconv.FormatInt(int64(td/time.Second), 10) + "s"
	}
	return td.String()
}

// MarshalText implements encoding.TextMarshaler (used by YAML and JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ErrDuration is returned (wrapped) by ParseDuration for text that is not a duration.
var ErrDuration = errors.New(`not a duration like "2s", "500ms" or "1m"`)

// ParseDuration parses "2s", "500ms", "1m30s"; a bare "0" is zero. A
// leading whole number of days is allowed too ("30d", "1d12h"): dvr.keep
// is written in days.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(t, 'd'); i > 0 {
		n, err := strconv.ParseUint(t[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%w (got %q)", ErrDuration, s)
		}
		days, t = time.Duration(n)*24*time.Hour, t[i+1:]
		if t == "" {
			return Duration(days), nil
		}
	}
	v, err := time.ParseDuration(t)
	if err != nil || (days > 0 && v < 0) {
		return 0, fmt.Errorf("%w (got %q)", ErrDuration, s)
	}
	return Duration(days + v), nil
}
