// Package browsertest drives Debian's Chromium from Go tests through
// chromedp: one headless browser per test, tabs that collect the page's
// errors, and test pages that play HLS (hls.js) and HTTP-FLV (mpegts.js)
// with the players vendored in ui/assets/vendor. No Node.js and no
// downloaded browser: the tests need only /usr/bin/chromium (Debian's
// package, installed by packaging/deps-debian.sh; $CHROMIUM overrides it).
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// DefaultPath is Debian's Chromium.
const DefaultPath = "/usr/bin/chromium"

// Browser is a headless Chromium that lives as long as its test.
type Browser struct {
	t   testing.TB
	ctx context.Context
}

// New starts a headless Chromium with its own profile directory; the
// test's cleanup stops it. It fails the test (never skips) when Chromium
// is missing.
func New(t testing.TB) *Browser {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = DefaultPath
	}
	_, err := exec.LookPath(path)
	require.NoError(t, err, "chromium is required (packaging/deps-debian.sh installs it)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser (with the first tab).
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return &Browser{t: t, ctx: ctx}
}

// Tab is one page of the browser. Its uncaught exceptions and
// console.error lines are collected (Errors); other console lines too
// (Console).
type Tab struct {
	t       testing.TB
	ctx     context.Context
	mu      sync.Mutex
	errs    []string
	console []string
}

// Tab opens a new tab; it closes with the test.
func (b *Browser) Tab() *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	tab := &Tab{t: b.t, ctx: ctx}
	require.NoError(b.t, chromedp.Do(ctx), "open tab")
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			tab.note(m)
		}
	}()
	return tab
}

func (tab *Tab) note(m chromedp.ConsoleMessage) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	line := fmt.Sprintf("%s: %s", m.Type, m.Text)
	if m.URL != "" {
		line += " (" + m.URL + ")"
	}
	if len(tab.console) < 500 {
		tab.console = append(tab.console, line)
	}
	if (m.Type == chromedp.ConsoleError || m.IsException()) && len(tab.errs) < 100 {
		tab.errs = append(tab.errs, line)
	}
}

// Ctx is the tab's chromedp context, for actions this package lacks.
func (tab *Tab) Ctx() context.Context { return tab.ctx }

// Errors are the page's uncaught exceptions and console errors so far.
func (tab *Tab) Errors() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.errs...)
}

// Console is every console line so far (at most 500).
func (tab *Tab) Console() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.console...)
}

// ClearErrors forgets the errors so far (e.g. a 401 caused on purpose).
func (tab *Tab) ClearErrors() {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	tab.errs = nil
}

// within runs fn with the tab's context bounded by d.
func (tab *Tab) within(d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(tab.ctx, d)
	defer cancel()
	return fn(ctx)
}

// Go navigates to url and waits for the load.
func (tab *Tab) Go(url string) {
	tab.t.Helper()
	err := tab.within(60*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Navigate(url))
	})
	require.NoError(tab.t, err, "navigate %s", url)
}

// Location is the tab's URL.
func (tab *Tab) Location() string {
	tab.t.Helper()
	loc, err := chromedp.Run(tab.ctx, chromedp.Location())
	require.NoError(tab.t, err)
	return loc
}

// Eval evaluates a JavaScript expression (promises are awaited) and
// decodes its JSON value into T.
func Eval[T any](tab *Tab, js string) T {
	tab.t.Helper()
	var v T
	err := tab.within(60*time.Second, func(ctx context.Context) error {
		var err error
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		return err
	})
	require.NoError(tab.t, err, "eval %s\npage errors: %v", js, tab.Errors())
	return v
}

// Do evaluates a JavaScript expression for its effect.
func (tab *Tab) Do(js string) {
	tab.t.Helper()
	Eval[chromedp.Void](tab, js)
}

// WaitJS waits until the expression is truthy (evaluated every 100 ms,
// also across navigations) and returns its value; it fails the test after
// timeout with the last evaluation error and the page's errors.
func WaitJS[T any](tab *Tab, js string, timeout time.Duration) T {
	tab.t.Helper()
	deadline := time.Now().Add(timeout)
	truthy := "(v => (v ? {ok: true, v} : {ok: false}))(" + js + ")"
	var lastErr error
	for {
		var res struct {
			OK bool            `json:"ok"`
			V  json.RawMessage `json:"v"`
		}
		lastErr = tab.within(10*time.Second, func(ctx context.Context) error {
			var err error
			res, err = chromedp.Run(ctx, chromedp.Evaluate[struct {
				OK bool            `json:"ok"`
				V  json.RawMessage `json:"v"`
			}](truthy, chromedp.EvalAwaitPromise))
			return err
		})
		if lastErr == nil && res.OK {
			var v T
			if _, void := any(v).(chromedp.Void); !void {
				require.NoError(tab.t, json.Unmarshal(res.V, &v), "wait for %s: decode %s", js, res.V)
			}
			return v
		}
		if time.Now().After(deadline) {
			tab.t.Fatalf("wait for %s: not true within %s (last error: %v)\npage errors: %v", js, timeout, lastErr, tab.Errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Wait is WaitJS when the value does not matter.
func (tab *Tab) Wait(js string, timeout time.Duration) {
	tab.t.Helper()
	WaitJS[chromedp.Void](tab, js, timeout)
}

// WaitVisible waits until the CSS selector matches a visible element.
func (tab *Tab) WaitVisible(css string, timeout time.Duration) {
	tab.t.Helper()
	err := tab.within(timeout, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(css)))
	})
	require.NoError(tab.t, err, "wait visible %s\npage errors: %v", css, tab.Errors())
}

// Click clicks the first element matching the CSS selector with the
// mouse, as a person would.
func (tab *Tab) Click(css string) {
	tab.t.Helper()
	err := tab.within(15*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	})
	require.NoError(tab.t, err, "click %s\npage errors: %v", css, tab.Errors())
}

// Type focuses the element matching the CSS selector, clears it and types
// text into it.
func (tab *Tab) Type(css, text string) {
	tab.t.Helper()
	err := tab.within(15*time.Second, func(ctx context.Context) error {
		// chromedp.Clear empties the value attribute, not what was typed.
		clear := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = ''; e.focus(); })()`, css)
		return chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(css)),
			func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
				_, err := chromedp.Evaluate[chromedp.Void](clear)(ctx, t)
				return chromedp.Void{}, err
			},
			chromedp.SendKeys(chromedp.CSS(css), text))
	})
	require.NoError(tab.t, err, "type into %s", css)
}

// Text is the text content of the first element matching the selector.
func (tab *Tab) Text(css string) string {
	tab.t.Helper()
	return Eval[string](tab, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, css))
}

// Screenshot writes a PNG of what the window shows to path.
func (tab *Tab) Screenshot(path string) {
	tab.t.Helper()
	tab.screenshot(path, chromedp.CaptureScreenshot())
}

// FullScreenshot writes a PNG of the whole page, scrolled or not, to path.
func (tab *Tab) FullScreenshot(path string) {
	tab.t.Helper()
	tab.screenshot(path, chromedp.FullScreenshot(100))
}

func (tab *Tab) screenshot(path string, shot chromedp.Action[[]byte]) {
	tab.t.Helper()
	var png []byte
	err := tab.within(60*time.Second, func(ctx context.Context) error {
		var err error
		png, err = chromedp.Run(ctx, shot)
		return err
	})
	require.NoError(tab.t, err, "screenshot")
	require.NoError(tab.t, os.WriteFile(path, png, 0o644))
}

// Cookies are the browser's cookies for the tab's URL.
func (tab *Tab) Cookies() []*network.Cookie {
	tab.t.Helper()
	res, err := chromedp.Call(tab.ctx, network.GetCookies, network.GetCookiesParams{})
	require.NoError(tab.t, err, "cookies")
	return res.Cookies
}

// Cookie is the named cookie, or nil.
func (tab *Tab) Cookie(name string) *network.Cookie {
	tab.t.Helper()
	for _, c := range tab.Cookies() {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}
