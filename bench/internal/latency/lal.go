package latency

import (
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"
)

// SilenceLal turns off the logger of lal, the RTMP client of the probes
// (and of any bench that publishes with it): several lines per session on
// stdout, where the bench writes its report.
func SilenceLal() {
	l, err := nazalog.New(func(o *nazalog.Option) {
		o.Level = nazalog.LevelPanic
		o.IsToStdout = false
	})
	if err == nil {
		lalrtmp.Log = l
		nazalog.SetGlobalLogger(l)
	}
}
