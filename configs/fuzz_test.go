package configs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse feeds arbitrary YAML to Parse: it must never panic, and a
// config it accepts must print and parse back to itself. Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, nil)
		if err != nil {
			require.Nil(t, c)
			return
		}
		out, err := c.YAML()
		require.NoError(t, err)
		again, err := Parse(out, nil)
		require.NoError(t, err, string(out))
		require.Equal(t, c, again)
	})
}
