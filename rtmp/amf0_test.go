package rtmp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWalkAMF0(t *testing.T) {
	long := append([]byte{amfLongString, 0, 0, 0, 3}, "abc"...)
	cases := []struct {
		name    string
		b       []byte
		std     string // error substring in standard mode, "" accepts
		lal     string // same in lal mode
		command string
	}{
		{"empty", nil, "", "", ""},
		{"scalars", cat(amfStr("x"), amfNum(1), []byte{amfBoolean, 1, amfNull, amfUndefined}, long), "", "", "x"},
		{"long string name", cat(long, amfNum(1)), "", "", "abc"},
		{"long string in an object", amfObj(amfKey("k"), long), "", "unknown to lal", ""},
		{"object", cat(amfStr("connect"), amfNum(1), amfObj(amfKey("app"), amfStr("live"), amfKey("n"), []byte{amfNull})), "", "", "connect"},
		{"ecma array", cat(amfStr("onMetaData"), []byte{amfECMAArray, 0, 0, 0, 1}, amfKey("w"), amfNum(1), []byte{0, 0, amfObjectEnd}), "", "", "onMetaData"},
		{"ecma array without end marker (lal)", cat([]byte{amfECMAArray, 0, 0, 0, 1}, amfKey("w"), amfNum(1)), "truncated", "", ""},
		{"ecma array with count 0 and pairs", cat([]byte{amfECMAArray, 0, 0, 0, 0}, amfKey("w"), amfNum(1), []byte{0, 0, amfObjectEnd}), "", "amf0:", ""},
		{"strict array", cat([]byte{amfStrictArray, 0, 0, 0, 2}, amfNum(1), amfStr("a")), "", "", ""},
		{"strict array huge count", []byte{amfStrictArray, 0xff, 0xff, 0xff, 0xff, amfNull}, "truncated", "truncated", ""},
		{"ecma array huge count", []byte{amfECMAArray, 0xff, 0xff, 0xff, 0xff, 0, 0, amfObjectEnd}, "", "not allowed", ""},
		{"reference and date", cat([]byte{amfReference, 0, 1, amfDate}, make([]byte, 10)), "", "unknown to lal", ""},
		{"unsupported marker", []byte{amfUnsupported}, "0x0d not allowed", "", ""},
		{"amf3 switch", []byte{0x11, 0x01}, "0x11 not allowed", "0x11 not allowed", ""},
		{"typed object", []byte{0x10, 0, 1, 'a', 0, 0, 9}, "0x10 not allowed", "0x10 not allowed", ""},
		{"object end as value", cat([]byte{amfObject}, amfKey("a"), []byte{amfObjectEnd}), "0x09 not allowed", "0x09 not allowed", ""},
		{"unterminated object", cat([]byte{amfObject}, amfKey("a"), amfNum(1)), "truncated", "truncated", ""},
		{"short number", []byte{amfNumber, 1, 2}, "truncated", "truncated", ""},
		{"short string", []byte{amfString, 0, 5, 'a'}, "truncated", "truncated", ""},
		{"huge long string", []byte{amfLongString, 0xff, 0xff, 0xff, 0xff, 'a'}, "truncated", "truncated", ""},
		{"key overrun", []byte{amfObject, 0, 9, 'a'}, "truncated", "truncated", ""},
		{"depth 4", cat([]byte{amfStrictArray, 0, 0, 0, 1, amfObject, 0, 1, 'a', amfECMAArray, 0, 0, 0, 1, 0, 1, 'b', amfObject},
			[]byte{0, 0, 9, 0, 0, 9, 0, 0, 9}), "", "", ""},
		{"depth 5", cat([]byte{amfStrictArray, 0, 0, 0, 1, amfObject, 0, 1, 'a', amfECMAArray, 0, 0, 0, 1, 0, 1, 'b', amfObject},
			[]byte{0, 1, 'c', amfObject, 0, 0, 9, 0, 0, 9, 0, 0, 9, 0, 0, 9}), "nesting too deep", "nesting too deep", ""},
	}
	for _, tc := range cases {
		for _, m := range []struct {
			mode amfMode
			want string
		}{{amfStandard, tc.std}, {amfLal, tc.lal}} {
			name, err := walkAMF0(tc.b, make([]amfFrame, 4), m.mode)
			if m.want != "" {
				require.ErrorContains(t, err, m.want, "%s mode %d", tc.name, m.mode)
				continue
			}
			require.NoError(t, err, "%s mode %d", tc.name, m.mode)
			require.Equal(t, tc.command, string(name), tc.name)
		}
	}
}

func TestWalkAMF0DeepAttackIsCheap(t *testing.T) {
	// 2,500,000 levels, 10 MB: rejected at level 33 without allocating.
	b := nestedConnect(2_500_000)
	stack := make([]amfFrame, 32)
	allocs := testing.AllocsPerRun(5, func() {
		_, err := walkAMF0(b, stack, amfStandard)
		require.ErrorIs(t, err, errAMFDepth)
	})
	require.Zero(t, allocs)
}
