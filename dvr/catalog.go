package dvr

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Recording is one file: closed, or being written (Recording true).
type Recording struct {
	ID        string
	Vhost     string
	App       string
	Stream    string
	File      string
	Start     time.Time
	Duration  time.Duration
	Bytes     int64
	Recording bool
}

// Errors of the catalog; check with errors.Is.
var (
	ErrNotFound = errors.New("no such recording")
	ErrBusy     = errors.New("recording is being written")
)

// List returns every recording, oldest first.
func (m *Manager) List() []Recording {
	m.mu.Lock()
	out := make([]Recording, 0, len(m.catalog)+len(m.recorders))
	for _, r := range m.catalog {
		out = append(out, r)
	}
	recs := make([]*recorder, 0, len(m.recorders))
	for r := range m.recorders {
		recs = append(recs, r)
	}
	m.mu.Unlock()
	for _, r := range recs {
		if l := r.liveSnapshot(); l.ID != "" {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].File < out[j].File
	})
	return out
}

// Get returns a closed recording by id.
func (m *Manager) Get(id string) (Recording, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.catalog[id]
	if !ok {
		if m.closingID[id] || m.liveLocked(id) {
			return Recording{}, ErrBusy
		}
		return Recording{}, ErrNotFound
	}
	return r, nil
}

func (m *Manager) liveLocked(id string) bool {
	for r := range m.recorders {
		if r.liveSnapshot().ID == id {
			return true
		}
	}
	return false
}

// Open opens a closed recording for reading.
func (m *Manager) Open(id string) (*os.File, Recording, error) {
	r, err := m.Get(id)
	if err != nil {
		return nil, r, err
	}
	f, err := os.Open(r.File)
	if errors.Is(err, fs.ErrNotExist) {
		m.mu.Lock()
		delete(m.catalog, id)
		m.mu.Unlock()
		return nil, r, ErrNotFound
	}
	return f, r, err
}

// Delete removes a closed recording's file.
func (m *Manager) Delete(id string) error {
	r, err := m.Get(id)
	if err != nil {
		return err
	}
	if err := os.Remove(r.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m.mu.Lock()
	delete(m.catalog, id)
	m.mu.Unlock()
	m.removeEmptyDirs(r)
	m.log.Info("dvr: recording deleted", "file", r.File)
	return nil
}

// removeEmptyDirs removes the directories a deleted file leaves empty, up
// to its template's root.
func (m *Manager) removeEmptyDirs(r Recording) {
	set, ok := m.vhosts[r.Vhost]
	if !ok {
		return
	}
	root := set.Template.Root()
	for dir := filepath.Dir(r.File); dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}

// scan finishes the files a crash left and lists every recording under
// each vhost's template root.
func (m *Manager) scan() {
	for vhost, set := range m.vhosts {
		root := set.Template.Root()
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			name := path
			ext := filepath.Ext(path)
			if ext != ".mp4" && ext != ".flv" {
				return nil
			}
			if strings.HasSuffix(strings.TrimSuffix(path, ext), ".tmp") {
				name = strings.TrimSuffix(path, ".tmp"+ext) + ext
				if _, ok := set.Template.Match(name); !ok {
					return nil
				}
				name = freeName(name, false)
				if err := m.recoverFile(path, name, ext); err != nil {
					m.log.Warn("dvr: a crash's leftover could not be finished", "file", path, "err", err)
					return nil
				}
				m.log.Info("dvr: finished a recording a crash left", "file", name)
			}
			key, ok := set.Template.Match(name)
			if !ok {
				return nil
			}
			if key.Vhost == "" {
				key.Vhost = vhost
			}
			if key.Vhost != vhost {
				return nil
			}
			r, err := readRecording(name)
			if err != nil {
				return nil
			}
			r.Vhost, r.App, r.Stream = key.Vhost, key.App, key.Name
			m.mu.Lock()
			m.catalog[r.ID] = r
			m.mu.Unlock()
			return nil
		})
	}
}

func (m *Manager) recoverFile(tmp, final, ext string) error {
	if ext == ".flv" {
		return os.Rename(tmp, final)
	}
	if err := recoverMP4(tmp, final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(final); serr == nil {
			return nil // kept fragmented
		}
		return err
	}
	return nil
}

// readRecording reads a closed file's size and duration; its start is
// when it was last written less its duration.
func readRecording(name string) (Recording, error) {
	f, err := os.Open(name)
	if err != nil {
		return Recording{}, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return Recording{}, err
	}
	var d time.Duration
	if filepath.Ext(name) == ".flv" {
		d, err = flvDuration(f, st.Size())
		_ = f.Close()
	} else {
		_ = f.Close()
		d, err = mp4Duration(name)
	}
	if err != nil {
		return Recording{}, err
	}
	return Recording{
		ID: recordingID(name), File: name, Start: st.ModTime().Add(-d),
		Duration: d, Bytes: st.Size(),
	}, nil
}

// cleanLoop deletes recordings older than their vhost's keep, once per
// CleanInterval.
func (m *Manager) cleanLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.CleanInterval)
	defer t.Stop()
	for {
		m.clean(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) clean(now time.Time) {
	var old []Recording
	m.mu.Lock()
	for _, r := range m.catalog {
		set, ok := m.vhosts[r.Vhost]
		if ok && set.Keep > 0 && now.Sub(r.Start.Add(r.Duration)) > set.Keep {
			old = append(old, r)
		}
	}
	m.mu.Unlock()
	for _, r := range old {
		if err := m.Delete(r.ID); err != nil {
			m.log.Warn("dvr: keep: could not delete an old recording", "file", r.File, "err", err)
		}
	}
}

// Stats is what /metrics shows.
type Stats struct {
	Bytes     int64 // bytes of recordings closed this run, plus those being written
	Files     int64 // recordings closed this run
	Failures  int64 // write failures and files not started (min_free)
	Recording int   // files being written
	Disks     []Disk
}

// Disk is the free space where a vhost records.
type Disk struct {
	Vhost string
	Dir   string
	Free  int64
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	s := Stats{Bytes: m.bytes.Load(), Files: m.files.Load(), Failures: m.failures.Load()}
	for _, r := range m.List() {
		if r.Recording {
			s.Recording++
			s.Bytes += r.Bytes
		}
	}
	names := make([]string, 0, len(m.vhosts))
	for v := range m.vhosts {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		dir := m.vhosts[v].Template.Root()
		free, err := freeBytes(dir)
		if err != nil {
			free = -1
		}
		s.Disks = append(s.Disks, Disk{Vhost: v, Dir: dir, Free: free})
	}
	return s
}

// IsRecording reports whether a live stream is being written to a file.
func (m *Manager) IsRecording(vhost, app, name string) bool {
	m.mu.Lock()
	recs := make([]*recorder, 0, len(m.recorders))
	for r := range m.recorders {
		if r.key.Vhost == vhost && r.key.App == app && r.key.Name == name {
			recs = append(recs, r)
		}
	}
	m.mu.Unlock()
	for _, r := range recs {
		if r.liveSnapshot().ID != "" {
			return true
		}
	}
	return false
}

func parentDir(dir string) string { return filepath.Dir(dir) }
