package latency

import (
	"slices"
	"time"
)

// Quantiles summarise hop times in milliseconds. The benches embed them in
// their own JSON shapes, after the frame counts they report.
type Quantiles struct {
	MedianMS float64 `json:"median_ms"`
	P95MS    float64 `json:"p95_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// Summarize sorts ds and returns their quantiles (zero when ds is empty).
func Summarize(ds []time.Duration) Quantiles {
	var q Quantiles
	if len(ds) == 0 {
		return q
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(f float64) float64 { return ms(ds[min(len(ds)-1, int(f*float64(len(ds))))]) }
	q.MedianMS, q.P95MS, q.MinMS, q.MaxMS = at(0.5), at(0.95), ms(ds[0]), ms(ds[len(ds)-1])
	return q
}
