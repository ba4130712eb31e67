package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/dvr"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/ui"
)

// startDVR records the streams of the vhosts that have dvr. Like HLS it
// outlives the run context: at shutdown each recorder closes its file as
// ingest ends the stream.
func startDVR(ctx context.Context, cfg *configs.Config, hub *stream.Hub, log *slog.Logger) (*dvr.Manager, error) {
	sets, err := dvr.SettingsFrom(cfg)
	if err != nil {
		return nil, err
	}
	m := dvr.NewManager(hub, sets, dvr.Options{}, log)
	m.Start(context.WithoutCancel(ctx))
	return m, nil
}

// dvrStore is the DVR as the UI reads it.
type dvrStore struct{ m *dvr.Manager }

func (s dvrStore) Recordings() []ui.Recording {
	list := s.m.List()
	out := make([]ui.Recording, 0, len(list))
	for _, r := range list {
		out = append(out, uiRecording(r))
	}
	return out
}

func uiRecording(r dvr.Recording) ui.Recording {
	return ui.Recording{
		ID: r.ID, Stream: stream.Key{Vhost: r.Vhost, App: r.App, Name: r.Stream},
		File: r.File, Start: r.Start, Duration: r.Duration, Bytes: r.Bytes, Recording: r.Recording,
	}
}

func dvrError(err error) error {
	switch {
	case errors.Is(err, dvr.ErrNotFound):
		return ui.ErrRecordingNotFound
	case errors.Is(err, dvr.ErrBusy):
		return ui.ErrRecordingBusy
	}
	return err
}

func (s dvrStore) OpenRecording(id string) (*os.File, ui.Recording, error) {
	f, r, err := s.m.Open(id)
	return f, uiRecording(r), dvrError(err)
}

func (s dvrStore) DeleteRecording(id string) error { return dvrError(s.m.Delete(id)) }

func (s dvrStore) IsRecording(k stream.Key) bool { return s.m.IsRecording(k.Vhost, k.App, k.Name) }

func (s dvrStore) RecordingStats() ui.RecordingStats {
	st := s.m.Stats()
	out := ui.RecordingStats{Bytes: st.Bytes, Files: st.Files, Failures: st.Failures, Recording: st.Recording}
	for _, d := range st.Disks {
		out.Disks = append(out.Disks, ui.RecordingDisk{Vhost: d.Vhost, Dir: d.Dir, Free: d.Free})
	}
	return out
}
