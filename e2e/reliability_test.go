package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reliabilityPassword is the admin password the reliability tests set, so
// they can read /metrics from the first second.
const reliabilityPassword = "reliability-admin"

// TestHooksUnderStress: 50 publishes a second for 4 s at a vhost whose
// on_publish hook is down (connection refused), slow (answers after 10 s)
// or answers garbage. Every publisher is refused (fail closed) within the
// 5 s hook timeout (+1 s for scheduling on a shared 2-core machine),
// goroutines stay bounded during the storm and return to the baseline
// after, /healthz answers within 1 s throughout, and a stream on another
// vhost keeps playing.
func TestHooksUnderStress(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
			_, _ = io.WriteString(w, `{"code":0}`)
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
	}))
	defer garbage.Close()
	modes := []struct{ name, url string }{
		{"down", fmt.Sprintf("http://127.0.0.1:%d/on_publish", freePort(t))},
		{"slow", slow.URL + "/on_publish"},
		{"garbage", garbage.URL + "/on_publish"},
	}
	file := speexFixture(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			p := startPodium(t, fmt.Sprintf(`auth: {admin_password: %s}
vhosts:
  - name: __defaultVhost__
    hooks: {on_publish: [%q]}
  - name: open
`, reliabilityPassword, m.url))
			admin := newAPI(t, p, reliabilityPassword)
			keep := publish(t, file, p.RTMPURL("live/keep?vhost=open"))
			probeUntil(t, p.RTMPURL("live/keep?vhost=open"), 15*time.Second, "video", "audio")
			base := readRuntime(t, admin)

			const rate, storm = 50, 4 * time.Second
			var (
				wg               sync.WaitGroup
				mu               sync.Mutex
				accepted, failed []string
				maxTook          time.Duration
				refused          atomic.Int64
			)
			addr := fmt.Sprintf("127.0.0.1:%d", p.RTMP)
			total := rate * int(storm/time.Second)
			var peakG int
			var maxHealth time.Duration
			sampleDone := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			go func() { // goroutines and responsiveness while the storm runs
				defer close(sampleDone)
				for ctx.Err() == nil {
					peakG = max(peakG, readRuntime(t, admin).Goroutines)
					d, err := httpGetWithin(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.HTTP), 5*time.Second)
					if err != nil {
						d = 5 * time.Second
					}
					maxHealth = max(maxHealth, d)
					time.Sleep(200 * time.Millisecond)
				}
			}()
			begin := time.Now()
			for i := range total {
				time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / rate)))
				wg.Go(func() {
					ref, took, err := rawPublishRefused(addr, "live", fmt.Sprintf("s%d", i), 12*time.Second)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						failed = append(failed, err.Error())
					case !ref:
						accepted = append(accepted, fmt.Sprintf("s%d", i))
					default:
						refused.Add(1)
						maxTook = max(maxTook, took)
					}
				})
			}
			wg.Wait()
			cancel()
			<-sampleDone

			n := int(refused.Load())
			t.Logf("%s hook: %d publishes refused, slowest refusal %v; goroutines %d before, peak %d; slowest /healthz %v",
				m.name, n, maxTook.Round(time.Millisecond), base.Goroutines, peakG, maxHealth.Round(time.Millisecond))
			require.Empty(t, accepted, "fail closed: no publish gets through a broken hook")
			require.Empty(t, failed, "every publisher gets an answer")
			require.Equal(t, total, n, "every publisher is refused")
			require.Less(t, maxTook, 6*time.Second, "refused within the 5 s hook timeout")
			require.Less(t, maxHealth, time.Second, "the box stays responsive")
			// ≤ 250 publishes in flight at once (5 s x 50/s), a few goroutines each.
			require.Less(t, peakG-base.Goroutines, 2500, "goroutines stay bounded")
			require.Eventually(t, func() bool {
				return readRuntime(t, admin).Goroutines <= base.Goroutines+10
			}, 15*time.Second, 250*time.Millisecond, "goroutines back to the baseline (%d)", base.Goroutines)
			require.Nil(t, keep.ProcessState, "the other vhost's publisher is still connected")
			probeUntil(t, p.RTMPURL("live/keep?vhost=open"), 10*time.Second, "video", "audio")
			p.Alive(t)
		})
	}
}
