package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/ingest/stream"
)

func TestHLSURL(t *testing.T) {
	cfg := configs.Default()
	u := hlsURL(cfg)
	require.Equal(t, "/live/cam1.m3u8", u(stream.Key{Vhost: "transcode", App: "live", Name: "cam1"}))
	require.Empty(t, u(stream.Key{Vhost: configs.DefaultVhost, App: "live", Name: "cam1"}), "no HLS on the input vhost")

	cfg.Vhosts[0].HLS = &configs.HLS{Enabled: true}
	u = hlsURL(cfg)
	require.Equal(t, "/live/cam1.m3u8?vhost=transcode", u(stream.Key{Vhost: "transcode", App: "live", Name: "cam1"}))
	require.Equal(t, "/live/cam1.m3u8?vhost=__defaultVhost__", u(stream.Key{Vhost: configs.DefaultVhost, App: "live", Name: "cam1"}))
}

func TestProbeRestKeepsStartupProbes(t *testing.T) {
	var probed []hwaccel.Status
	for _, b := range hwaccel.Backends() {
		probed = append(probed, hwaccel.Status{Backend: b.Name(), Encoder: b.Encoder(), Reason: "from start-up"})
	}
	got := probeRest(context.Background(), "", probed)
	require.Equal(t, probed, got, "nothing probed twice")
}

func TestNewUIServesWithConfigPassword(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Auth.AdminPassword = "pw-from-config"
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	u, err := newUI(cfg, uiParts{hub: hub}, io.Discard, nil)
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/streams", nil)
	req.SetBasicAuth("admin", "pw-from-config")
	rec := httptest.NewRecorder()
	u.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `[]`, mustField(t, rec.Body.Bytes(), "streams"))
}

func mustField(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	return string(m[name])
}
