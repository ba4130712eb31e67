package scrape

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlope(t *testing.T) {
	require.InDelta(t, 2.0, Slope([]float64{0, 1, 2, 3}, []float64{10, 12, 14, 16}), 1e-9)
	require.InDelta(t, 0.0, Slope([]float64{0, 1, 2}, []float64{5, 5, 5}), 1e-9)
	require.Equal(t, 0.0, Slope([]float64{1}, []float64{1}), "one point has no slope")
}

func TestSum(t *testing.T) {
	s := Samples{`a{x="1"}`: 2, `a{x="2"}`: 3, `ab`: 100, `a`: 1}
	require.Equal(t, 6.0, s.Sum("a"))
}
