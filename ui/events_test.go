package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// sseReader reads "snapshot" events from a live-update connection.
type sseReader struct {
	t    *testing.T
	res  *http.Response
	sc   *bufio.Scanner
	snap chan Snapshot
}

func openEvents(t *testing.T, f *fixture, ctx context.Context) *sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/v1/events", nil)
	require.NoError(t, err)
	req.SetBasicAuth(AdminUser, testPassword)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	r := &sseReader{t: t, res: res, sc: bufio.NewScanner(res.Body), snap: make(chan Snapshot, 64)}
	r.sc.Buffer(make([]byte, 1<<20), 16<<20)
	go func() {
		defer close(r.snap)
		event := ""
		for r.sc.Scan() {
			line := r.sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "snapshot":
				var s Snapshot
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s) == nil {
					r.snap <- s
				}
			}
		}
	}()
	return r
}

// next returns the next snapshot within d, or fails.
func (r *sseReader) next(d time.Duration) Snapshot {
	r.t.Helper()
	select {
	case s, ok := <-r.snap:
		require.True(r.t, ok, "event stream ended")
		return s
	case <-time.After(d):
		r.t.Fatalf("no snapshot within %s", d)
	}
	return Snapshot{}
}

func TestEventsLiveUpdates(t *testing.T) {
	f := newFixture(t) // ticks every 200 ms
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := openEvents(t, f, ctx)

	first := ev.next(time.Second)
	require.Empty(t, first.Streams)
	require.Positive(t, first.Summary.System.CPUs)

	// A publish shows in an update well within the tick.
	start := time.Now()
	f.publish(inKey, stream.ClientInfo{Protocol: "rtmp", Remote: "10.1.2.3:1"}, speexTrack)
	for {
		s := ev.next(time.Second)
		if len(s.Streams) == 1 {
			require.Equal(t, "cam1", s.Streams[0].Name)
			require.Equal(t, "speex", s.Streams[0].Audio.Codec)
			break
		}
	}
	require.Less(t, time.Since(start), time.Second)

	// Updates keep coming at the tick with nothing happening.
	before := time.Now()
	ev.next(time.Second)
	ev.next(time.Second)
	require.Less(t, time.Since(before), 1500*time.Millisecond)
	require.Equal(t, 1, f.ui.events.watchers())

	// A client that leaves is forgotten.
	cancel()
	require.Eventually(t, func() bool { return f.ui.events.watchers() == 0 }, 3*time.Second, 20*time.Millisecond)
}

func TestEventsEndAtShutdown(t *testing.T) {
	f := newFixture(t)
	ev := openEvents(t, f, context.Background())
	ev.next(time.Second)
	f.ui.events.close() // what Run does when its context ends
	deadline := time.After(3 * time.Second)
	for {
		select {
		case _, ok := <-ev.snap:
			if !ok {
				// And new dashboards are refused until restart.
				res, _ := f.request(http.MethodGet, "/api/v1/events", true, nil)
				require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
				return
			}
		case <-deadline:
			t.Fatal("the event stream did not end at shutdown")
		}
	}
}

func TestEventsBoundedWatchers(t *testing.T) {
	b := newBroadcaster(func() []byte { return []byte("{}") })
	var subs []chan []byte
	for range maxWatchers {
		ch := b.subscribe()
		require.NotNil(t, ch)
		subs = append(subs, ch)
	}
	require.Nil(t, b.subscribe(), "one too many")
	// A watcher that never reads holds one snapshot, not a backlog.
	for range 10 {
		b.publish()
	}
	require.Len(t, subs[0], 1)
	b.unsubscribe(subs[0])
	require.NotNil(t, b.subscribe())
}
