// Package hooks calls SRS-style HTTP callbacks: a POST of a JSON body
// ({"action":"on_publish",...}) answered by HTTP 200 with a bare `0` or
// {"code":0}. Anything else — another status, another code, garbage, an
// answer over 64 KiB, a redirect, no answer within the timeout — is a
// rejection, so callers that gate access fail closed.
//
// The answer rules are written here rather than taken from a library: the
// contract is SRS's own and no Go library implements it.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/podiumlive/podium/internal/redact"
)

// MaxAnswer bounds a hook's answer; a longer answer is a rejection.
const MaxAnswer = 64 << 10

// DefaultTimeout bounds one hook call.
const DefaultTimeout = 5 * time.Second

// ErrRejected wraps every answer that is not an allow.
var ErrRejected = errors.New("hook rejected")

// Event is the body SRS sends for on_publish, on_unpublish, on_play and
// on_stop; other hooks add their own fields with Extra.
type Event struct {
	Action   string `json:"action"`
	ServerID string `json:"server_id"`
	ClientID string `json:"client_id"`
	IP       string `json:"ip"`
	Vhost    string `json:"vhost"`
	App      string `json:"app"`
	Stream   string `json:"stream"`
	Param    string `json:"param"`
	TcURL    string `json:"tcUrl"`
	// Extra fields merged into the body (on_hls: duration, file, url,
	// m3u8, seq_no...). They never override the fields above.
	Extra map[string]any `json:"-"`
}

// MarshalJSON merges Extra into the body.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	b, err := json.Marshal(plain(e))
	if err != nil || len(e.Extra) == 0 {
		return b, err
	}
	m := make(map[string]any, len(e.Extra)+9)
	for k, v := range e.Extra {
		m[k] = v
	}
	var base map[string]any
	if err := json.Unmarshal(b, &base); err != nil {
		return nil, err
	}
	for k, v := range base {
		m[k] = v
	}
	return json.Marshal(m)
}

// Client posts hooks. The zero value is not usable: use New.
type Client struct {
	http *http.Client
	log  *slog.Logger
	wg   sync.WaitGroup // Notify's calls in flight
}

// New returns a client whose calls time out after timeout (0 = 5 s) and
// never follow redirects.
func New(timeout time.Duration, log *slog.Logger) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		http: &http.Client{
			Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		log: log,
	}
}

// Post calls one hook and returns the raw answer when it allows.
func (c *Client) Post(ctx context.Context, hook string, body any) ([]byte, error) {
	where := Redact(hook)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("hook %s: %w", where, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("hook %s: %w", where, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the URL, with its secrets: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("hook %s: %w", where, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("hook %s: read answer: %w", where, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("hook %s: %w: status %s", where, ErrRejected, resp.Status)
	}
	if len(ans) > MaxAnswer {
		return nil, fmt.Errorf("hook %s: %w: answer larger than %d bytes", where, ErrRejected, MaxAnswer)
	}
	if err := Allowed(ans); err != nil {
		return nil, fmt.Errorf("hook %s: %w", where, err)
	}
	return ans, nil
}

// Check calls every hook in order and returns the first rejection: the
// gate for on_publish and on_play (fail closed).
func (c *Client) Check(ctx context.Context, hooks []string, body any) error {
	for _, h := range hooks {
		if _, err := c.Post(ctx, h, body); err != nil {
			return err
		}
	}
	return nil
}

// Notify calls every hook in the background and logs failures: for events
// whose answer changes nothing (on_unpublish, on_stop, on_hls, on_dvr).
// Each call is bounded by the client's timeout; Wait waits for them.
func (c *Client) Notify(hooks []string, body any) {
	for _, h := range hooks {
		c.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.http.Timeout)
			defer cancel()
			if _, err := c.Post(ctx, h, body); err != nil {
				c.log.Warn("hook failed", "err", err)
			}
		})
	}
}

// Wait returns when every Notify call in flight has ended (each within
// the client's timeout): at shutdown, so on_unpublish and on_stop of the
// last sessions still reach their hooks.
func (c *Client) Wait() { c.wg.Wait() }

// Allowed reads an answer body: a bare 0 or a JSON object whose "code" is
// the integer 0 allows; anything else ("0" as a string, 0.0, another code,
// no code, not JSON) is ErrRejected, as in SRS.
func Allowed(ans []byte) error {
	ans = bytes.TrimSpace(ans)
	if string(ans) == "0" {
		return nil
	}
	var a struct {
		Code json.RawMessage `json:"code"`
	}
	if err := json.Unmarshal(ans, &a); err != nil {
		return fmt.Errorf("%w: answer is not 0 or a JSON object", ErrRejected)
	}
	code := string(bytes.TrimSpace(a.Code))
	switch {
	case code == "" || code == "null":
		return fmt.Errorf("%w: answer has no code", ErrRejected)
	case code != "0":
		if len(code) > 32 {
			code = code[:32] + "..."
		}
		return fmt.Errorf("%w: code %q", ErrRejected, code)
	}
	return nil
}

// Redact hides a URL's userinfo and secret query values (token, key...)
// so that hook and destination URLs can be logged and shown.
func Redact(raw string) string { return redact.URL(raw) }
