package hls

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// TestOnDemandPlaylistWaitsForFirstSegment: on an on-demand vhost (an
// edge) the first playlist request is demand for the stream and is
// answered once the first segment is listed; a stream nobody publishes
// gets a 404 after DemandWait; an ended publish's playlist on disk is not
// served until the new publish lists a segment.
func TestOnDemandPlaylistWaitsForFirstSegment(t *testing.T) {
	e := newEnv(t, Settings{Fragment: time.Second, Window: 6, Variant: VariantMPEGTS},
		Options{OnDemand: func(v string) bool { return v == "v" }, DemandWait: 3 * time.Second})
	all := readFLV(t, avFixture(t))
	var mu sync.Mutex
	demands := map[string]int{}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	e.hub.Listen(func(ev stream.Event) {
		if ev.Type != stream.EventDemand {
			return
		}
		mu.Lock()
		demands[ev.Key.Name]++
		first := demands[ev.Key.Name] == 1
		mu.Unlock()
		if ev.Key.Name != "cold" || !first {
			return
		}
		wg.Add(1)
		go func() { // what an edge's pull does: publish what it gets
			defer wg.Done()
			pub, err := e.hub.Publish(ev.Key, stream.ClientInfo{Protocol: "edge"})
			if err != nil {
				return
			}
			defer pub.Close()
			for i, p := range all {
				pub.WritePacket(p)
				if i%32 == 31 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}()
	})
	get := func(path string) (int, string, time.Duration) {
		start := time.Now()
		rec := httptest.NewRecorder()
		e.m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String(), time.Since(start)
	}

	code, body, _ := get("/live/cold.m3u8")
	require.Equal(t, http.StatusOK, code, body)
	pl := parsePlaylist(t, []byte(body))
	require.NotEmpty(t, segments(pl))
	code, _, _ = get("/live/cold/0.ts")
	require.Equal(t, http.StatusOK, code)

	code, _, took := get("/live/nobody.m3u8")
	require.Equal(t, http.StatusNotFound, code)
	require.GreaterOrEqual(t, took, 3*time.Second)
	require.Less(t, took, 5*time.Second)

	e.waitIdle("cold")
	code, _, took = get("/live/cold.m3u8") // ended: the stale playlist is not served
	require.Equal(t, http.StatusNotFound, code)
	require.GreaterOrEqual(t, took, 3*time.Second)
	mu.Lock()
	require.Equal(t, 2, demands["cold"], "each playlist request is demand")
	mu.Unlock()
}
