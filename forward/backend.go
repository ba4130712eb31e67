package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxHookAnswer bounds a backend's answer; more is an error, not a read.
const maxHookAnswer = 64 << 10

// hookRequest is SRS's on_forward body.
type hookRequest struct {
	Action   string `json:"action"`
	ServerID string `json:"server_id"`
	ClientID string `json:"client_id"`
	IP       string `json:"ip"`
	Vhost    string `json:"vhost"`
	App      string `json:"app"`
	TcURL    string `json:"tcUrl"`
	Stream   string `json:"stream"`
	Param    string `json:"param"`
}

// ParseHookAnswer reads an on_forward answer: {"code":0,"data":{"urls":[...]}}
// (a bare 0 or a missing data means no URLs). Any other code, or a URL
// that is not rtmp://, is an error.
func ParseHookAnswer(b []byte) ([]string, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "0" {
		return nil, nil
	}
	var ans struct {
		Code *int `json:"code"`
		Data *struct {
			URLs []string `json:"urls"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("answer is not JSON: %w", err)
	}
	if ans.Code == nil {
		return nil, errors.New("answer has no code")
	}
	if *ans.Code != 0 {
		return nil, fmt.Errorf("answer code %d", *ans.Code)
	}
	if ans.Data == nil {
		return nil, nil
	}
	for i, u := range ans.Data.URLs {
		if !strings.HasPrefix(u, "rtmp://") {
			return nil, fmt.Errorf("answer urls[%d]: not an rtmp:// URL", i)
		}
	}
	return ans.Data.URLs, nil
}

// callHook POSTs on_forward and returns the URLs the backend answered.
func callHook(ctx context.Context, client *http.Client, hook string, req hookRequest) ([]string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: %w", hook, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: %w", hook, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: %w", hook, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHookAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: read answer: %w", hook, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("on_forward %s: status %s", hook, resp.Status)
	}
	if len(b) > maxHookAnswer {
		return nil, fmt.Errorf("on_forward %s: answer larger than %d bytes", hook, maxHookAnswer)
	}
	urls, err := ParseHookAnswer(b)
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: %w", hook, err)
	}
	return urls, nil
}

// startHookLocked asks fs's backend for its URLs in a goroutine, retrying
// with backoff until it answers; the static list runs meanwhile.
func (m *Manager) startHookLocked(fs *fwdStream) {
	ctx, cancel := context.WithCancel(m.ctx)
	fs.hookCancel = cancel
	hook := fs.set.Backend
	st := fs.st
	pub := st.Publisher()
	ip := pub.Remote
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	param := pub.Params
	if param != "" {
		param = "?" + param
	}
	req := hookRequest{
		Action: "on_forward", ServerID: m.opts.ServerID, ClientID: strconv.FormatUint(st.ID(), 10),
		IP: ip, Vhost: st.Key().Vhost, App: st.Key().App,
		TcURL: "rtmp://" + st.Key().Vhost + "/" + st.Key().App, Stream: st.Key().Name, Param: param,
	}
	client := &http.Client{Timeout: m.opts.HookTimeout}
	log := fs.log.With("backend", hook)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		b := backoff{min: m.opts.BackoffMin, max: m.opts.BackoffMax}
		for attempt := 1; ; attempt++ {
			urls, err := callHook(ctx, client, hook, req)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				log.Info("on_forward answered", "urls", len(urls))
				m.mu.Lock()
				if m.streams[st.ID()] == fs && fs.set.Backend == hook {
					fs.hookOK = true
					fs.hookURLs = m.expand(fs, urls)
					m.applyLocked(fs, fs.hookURLs, false)
				}
				m.mu.Unlock()
				return
			}
			delay := b.next()
			log.Warn("on_forward failed, using the static list meanwhile", "err", err,
				"attempt", attempt, "retry_in", delay.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
}
