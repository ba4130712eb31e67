package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/podiumlive/podium/hooks"
)

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
// hooks.Client bounds the answer (64 KiB) and the time (its timeout),
// refuses redirects and any code but 0; the URLs are read here. Errors
// name the hook with its secrets redacted.
func callHook(ctx context.Context, client *hooks.Client, hook string, ev hooks.Event) ([]string, error) {
	b, err := client.Post(ctx, hook, ev)
	if err != nil {
		return nil, fmt.Errorf("on_forward: %w", err)
	}
	urls, err := ParseHookAnswer(b)
	if err != nil {
		return nil, fmt.Errorf("on_forward %s: %w", hooks.Redact(hook), err)
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
	ev := hooks.Event{
		Action: "on_forward", ServerID: m.opts.ServerID, ClientID: strconv.FormatUint(st.ID(), 10),
		IP: ip, Vhost: st.Key().Vhost, App: st.Key().App,
		TcURL: "rtmp://" + st.Key().Vhost + "/" + st.Key().App, Stream: st.Key().Name, Param: param,
	}
	log := fs.log.With("backend", hooks.Redact(hook))
	client := hooks.New(m.opts.HookTimeout, log)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		b := m.opts.backoff()
		for attempt := 1; ; attempt++ {
			urls, err := callHook(ctx, client, hook, ev)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				log.Info("on_forward answered", "urls", len(urls))
				m.mu.Lock()
				if m.streams[st.ID()] == fs && fs.set.Backend == hook {
					fs.hookOK = true
					fs.hookURLs = m.expand(fs, urls)
					m.applyLocked(fs, m.urlsLocked(fs), false)
				}
				m.mu.Unlock()
				return
			}
			delay := b.Next()
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
