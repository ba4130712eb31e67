package safe

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	require.NoError(t, Parse(func() error { return nil }))
	want := errors.New("bad")
	require.ErrorIs(t, Parse(func() error { return want }), want)
	err := Parse(func() error {
		var b []byte
		_ = b[3] // index out of range
		return nil
	})
	require.ErrorContains(t, err, "parser panic: runtime error: index out of range")
}
