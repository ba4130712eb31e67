package ui

import (
	"bytes"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// runtimeMetrics are the Prometheus client's standard collectors: the Go
// runtime (go_goroutines, go_memstats_*, go_gc_duration_seconds, ...) and
// the process (process_open_fds, process_resident_memory_bytes,
// process_cpu_seconds_total, ...), under the names every Prometheus
// dashboard already knows, so a leak shows in production as it does in
// bench/churn. Podium's own families are written by hand (promWriter);
// these come from the client's own registry, one per UI.
type runtimeMetrics struct {
	reg *prometheus.Registry
}

func newRuntimeMetrics() *runtimeMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &runtimeMetrics{reg: reg}
}

// write appends the collectors' families in the text format.
func (r *runtimeMetrics) write(b *bytes.Buffer) error {
	mfs, err := r.reg.Gather()
	if err != nil {
		return fmt.Errorf("gather runtime metrics: %w", err)
	}
	enc := expfmt.NewEncoder(b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode runtime metrics: %w", err)
		}
	}
	return nil
}
