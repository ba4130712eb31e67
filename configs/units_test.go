package configs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestBitrate(t *testing.T) {
	tests := []struct {
		in    string
		bps   int
		print string
	}{
		{"64k", 64_000, "64k"},
		{"64K", 64_000, "64k"},
		{"1500k", 1_500_000, "1500k"},
		{"2M", 2_000_000, "2M"},
		{"2000k", 2_000_000, "2M"},
		{"1.5M", 1_500_000, "1500k"},
		{"128000", 128_000, "128k"},
		{"96kbps", 96_000, "96k"},
		{" 999 ", 999, "999"},
		{"0", 0, "0"},
	}
	for _, tt := range tests {
		b, err := ParseBitrate(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.bps, b.BitsPerSecond(), tt.in)
		require.Equal(t, tt.print, b.String(), tt.in)
		again, err := ParseBitrate(b.String())
		require.NoError(t, err)
		require.Equal(t, b, again)
	}
	for _, bad := range []string{"", "k", "fast", "-64k", "1e6", "NaN", "Inf", "0x10", "64kk", "1_000", "+5", "9999999999999M"} {
		_, err := ParseBitrate(bad)
		require.Error(t, err, bad)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in    string
		d     time.Duration
		print string
	}{
		{"2s", 2 * time.Second, "2s"},
		{"120s", 2 * time.Minute, "120s"},
		{"2m", 2 * time.Minute, "120s"},
		{"1m30s", 90 * time.Second, "90s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
		{"0", 0, "0s"},
		{"0s", 0, "0s"},
	}
	for _, tt := range tests {
		d, err := ParseDuration(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.d, d.Std(), tt.in)
		require.Equal(t, tt.print, d.String(), tt.in)
		again, err := ParseDuration(d.String())
		require.NoError(t, err)
		require.Equal(t, d, again)
	}
	for _, bad := range []string{"", "2", "soon", "2 s", "s"} {
		_, err := ParseDuration(bad)
		require.Error(t, err, bad)
	}
}

func TestUnitsMarshal(t *testing.T) {
	v := struct {
		B Bitrate  `yaml:"b" json:"b"`
		D Duration `yaml:"d" json:"d"`
	}{Bitrate(64_000), Duration(2 * time.Second)}

	y, err := yaml.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, "b: 64k\nd: 2s\n", string(y))

	j, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"b":"64k","d":"2s"}`, string(j))

	v.B, v.D = 0, 0
	require.NoError(t, json.Unmarshal([]byte(`{"b":"2M","d":"1m"}`), &v))
	require.Equal(t, Bitrate(2_000_000), v.B)
	require.Equal(t, Duration(time.Minute), v.D)
	require.Error(t, json.Unmarshal([]byte(`{"b":"x"}`), &v))
	require.Error(t, json.Unmarshal([]byte(`{"d":"x"}`), &v))
}

func TestUnitErrors(t *testing.T) {
	_, err := ParseBitrate("fast")
	require.ErrorIs(t, err, ErrBitrate)
	require.EqualError(t, err, `not a bitrate like "64k", "1500k" or "2M" (got "fast")`)
	_, err = ParseDuration("soon")
	require.ErrorIs(t, err, ErrDuration)
	require.EqualError(t, err, `not a duration like "2s", "500ms" or "1m" (got "soon")`)
}
