package flv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommandRoundTrip(t *testing.T) {
	body := CommandBody("onStatus", 0, nil, map[string]any{
		"level": "error", "code": "NetStream.Publish.BadName", "description": "busy", "n": 3.0,
	})
	c, err := ParseCommand(body)
	require.NoError(t, err)
	require.Equal(t, "onStatus", c.Name)
	require.Equal(t, []any{nil, map[string]any{"level": "error", "code": "NetStream.Publish.BadName",
		"description": "busy", "n": 3.0}}, c.Args)

	c, err = ParseCommand(CommandBody("_result", 4, nil, 1.0))
	require.NoError(t, err)
	require.Equal(t, 4.0, c.TxID)
	require.Equal(t, []any{nil, 1.0}, c.Args)
}

func TestParseCommandBad(t *testing.T) {
	for _, b := range [][]byte{nil, {0x02, 0, 5, 'a'}, append(CommandBody("x", 1), amfObject, 0, 3, 'a')} {
		_, err := ParseCommand(b)
		require.Error(t, err, "% x", b)
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add(CommandBody("_result", 1, map[string]any{"fmsVer": "FMS/3,0,1,123"}, map[string]any{"code": "NetConnection.Connect.Success"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err == nil {
			_, _ = ParseCommand(CommandBody(c.Name, c.TxID, c.Args...))
		}
	})
}
