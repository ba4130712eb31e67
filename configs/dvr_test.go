package configs

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in    string
		b     int64
		print string
	}{
		{"2GiB", 2 << 30, "2GiB"},
		{"2gib", 2 << 30, "2GiB"},
		{"512MiB", 512 << 20, "512MiB"},
		{"1.5GB", 1_500_000_000, "1500000000"},
		{"500M", 500 << 20, "500MiB"},
		{"64k", 64 << 10, "64KiB"},
		{"1048576", 1 << 20, "1MiB"},
		{"0", 0, "0"},
		{"100B", 100, "100"},
	}
	for _, tt := range tests {
		b, err := ParseByteSize(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.b, b.Bytes(), tt.in)
		require.Equal(t, tt.print, b.String(), tt.in)
		again, err := ParseByteSize(b.String())
		require.NoError(t, err)
		require.Equal(t, b, again)
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "lots", "1e9", "2 GiBs"} {
		_, err := ParseByteSize(bad)
		require.ErrorIs(t, err, ErrByteSize, bad)
	}
}

func TestDurationDays(t *testing.T) {
	d, err := ParseDuration("30d")
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, d.Std())
	require.Equal(t, "30d", d.String())
	d, err = ParseDuration("1d12h")
	require.NoError(t, err)
	require.Equal(t, 36*time.Hour, d.Std())
	for _, bad := range []string{"d", "xd", "1d-2h", "1.5d"} {
		_, err := ParseDuration(bad)
		require.Error(t, err, bad)
	}
}

func TestDVRConfig(t *testing.T) {
	c, err := Parse([]byte(`
data_dir: /srv/podium
vhosts:
  - name: __defaultVhost__
    dvr: {keep: 30d, min_free: 2GiB}
  - name: other
    dvr: {}
`), nil)
	require.NoError(t, err)
	d := c.Vhost(DefaultVhost).DVR
	require.NotNil(t, d)
	require.Equal(t, DVR{
		Enabled: true, Path: "/srv/podium/dvr/[app]/[stream]/[2006]-[01]-[02]_[15][04][05].mp4",
		Plan: "session", Duration: Duration(30 * time.Minute), Keep: Duration(30 * 24 * time.Hour), MinFree: 2 << 30,
	}, *d)
	require.NoError(t, c.Validate())
	require.Zero(t, c.Vhost("other").DVR.MinFree, "min_free is off unless set")
	require.Zero(t, c.Vhost("other").DVR.Keep, "every recording is kept unless keep is set")

	bad := []struct {
		mutate func(d *DVR)
		key    string
		msg    string
	}{
		{func(d *DVR) { d.Path = "" }, "vhosts[0].dvr.path", "required"},
		{func(d *DVR) { d.Path = "/x/[stream].mkv" }, "vhosts[0].dvr.path", "must end in .mp4 or .flv"},
		{func(d *DVR) { d.Path = "/x/[room].mp4" }, "vhosts[0].dvr.path", "unknown placeholder [room]"},
		{func(d *DVR) { d.Path = "/x/rec.mp4"; d.Plan = "segment" }, "vhosts[0].dvr.path", "placeholder"},
		{func(d *DVR) { d.Plan = "daily" }, "vhosts[0].dvr.plan", "not one of session|segment"},
		{func(d *DVR) { d.Plan = "segment"; d.Duration = Duration(time.Second / 2) }, "vhosts[0].dvr.duration", "at least 1s"},
		{func(d *DVR) { d.Keep = -1 }, "vhosts[0].dvr.keep", "negative"},
		{func(d *DVR) { d.MinFree = -1 }, "vhosts[0].dvr.min_free", "negative"},
	}
	for _, tt := range bad {
		c, err := Parse([]byte("vhosts: [{name: __defaultVhost__, dvr: {}}]"), nil)
		require.NoError(t, err)
		tt.mutate(c.Vhost(DefaultVhost).DVR)
		err = c.Validate()
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%v", err)
		require.ErrorContains(t, err, tt.key+": ")
		require.ErrorContains(t, err, tt.msg)
	}

	_, err = Parse([]byte("vhosts: [{name: __defaultVhost__, dvr: {min_free: lots}}]"), nil)
	require.ErrorContains(t, err, "vhosts[0].dvr.min_free")
	_, err = Parse([]byte("vhosts: [{name: __defaultVhost__, dvr: {plan: session, pth: /x}}]"), nil)
	require.ErrorContains(t, err, "vhosts[0].dvr.pth: unknown key")
}
