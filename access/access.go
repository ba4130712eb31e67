// Package access decides who may publish and play, for every protocol
// alike: per-vhost IP/CIDR allow and deny lists, an optional publish key
// (?key=), and the SRS hooks on_publish/on_play (fail closed), with
// on_unpublish/on_stop notified when a session ends.
//
// The checks run in this order, cheapest first, and the first refusal
// wins: deny list, allow list, publish key, hooks (in their configured
// order). They run on the caller's goroutine — the connection's own — so a
// slow hook holds up only the client it is deciding about.
package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
)

// Request is one publish or play attempt, from any protocol.
type Request struct {
	Protocol string // rtmp | rtsp | ...
	ClientID string
	IP       string // the client's address, without port
	Vhost    string
	App      string
	Stream   string
	// Param is the raw query of the request ("key=...&x=y", no "?"),
	// secrets included: checked and sent to hooks, never logged.
	Param string
	TcURL string
}

// ErrDenied is wrapped by every error Publish and Play return.
var ErrDenied = errors.New("access denied")

// Reasons a request is denied (Denied.Reason): short, fixed, and safe to
// send to the client.
const (
	ReasonIPDenied     = "ip not allowed"
	ReasonKeyMissing   = "publish key missing"
	ReasonKeyWrong     = "publish key wrong"
	ReasonHookRejected = "rejected by hook"
)

// Denied is the error Publish and Play return. Error() is safe to log: it
// names the rule or the hook (its URL redacted), never a key or a token.
type Denied struct {
	Action string // "publish" or "play"
	// Reason is one of the Reason* constants: what to tell the client,
	// which should not learn the hook's address or the lists.
	Reason string
	// Detail says which rule refused, for the log ("" when Err says it).
	Detail string
	// Err is the hook's failure (wrapping hooks.ErrRejected, or a network
	// error such as a timeout), nil for the other reasons.
	Err error
}

func (d *Denied) Error() string {
	s := d.Action + " denied: " + d.Reason
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is find ErrDenied and the hook's error.
func (d *Denied) Unwrap() []error {
	if d.Err == nil {
		return []error{ErrDenied}
	}
	return []error{ErrDenied, d.Err}
}

// ClientMessage is what to tell a client refused with err: the Denied
// reason, or a generic line for any other error.
func ClientMessage(err error) string {
	var d *Denied
	if errors.As(err, &d) {
		return d.Action + " denied: " + d.Reason
	}
	return "access denied"
}

// Guard applies a config's access rules. A nil *Guard allows everything.
// Its methods are safe for concurrent use.
type Guard struct {
	hooks *hooks.Client
	log   *slog.Logger
	rules atomic.Pointer[map[string]*vhostRules]
	// ServerID is sent to hooks as server_id; set it before use.
	ServerID string
}

// vhostRules is a vhost's security and hooks, parsed once per config.
type vhostRules struct {
	publishAllow, publishDeny []netip.Prefix
	playAllow, playDeny       []netip.Prefix
	// publishKey is the SHA-256 of the configured key (nil: no key).
	publishKey []byte

	onPublish, onUnpublish, onPlay, onStop []string
}

// New returns a guard for cfg. hc may be nil when cfg has no hooks (a
// vhost with hooks then refuses every publish and play: fail closed).
func New(cfg *configs.Config, hc *hooks.Client, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{hooks: hc, log: log, ServerID: "podium"}
	g.Reload(cfg)
	return g
}

// Reload applies a new config to the requests that come after it;
// sessions already admitted keep running and are notified with the hooks
// of the new config when they end.
func (g *Guard) Reload(cfg *configs.Config) {
	rules := make(map[string]*vhostRules)
	if cfg != nil {
		for i, v := range cfg.Vhosts {
			if v.Security == nil && v.Hooks == nil {
				continue
			}
			rules[v.Name] = g.compile(fmt.Sprintf("vhosts[%d]", i), v)
		}
	}
	g.rules.Store(&rules)
}

func (g *Guard) compile(key string, v configs.Vhost) *vhostRules {
	r := &vhostRules{}
	if s := v.Security; s != nil {
		r.publishAllow = g.prefixes(key+".security.publish_allow", s.PublishAllow)
		r.publishDeny = g.prefixes(key+".security.publish_deny", s.PublishDeny)
		r.playAllow = g.prefixes(key+".security.play_allow", s.PlayAllow)
		r.playDeny = g.prefixes(key+".security.play_deny", s.PlayDeny)
		if s.PublishKey != "" {
			sum := sha256.Sum256([]byte(s.PublishKey))
			r.publishKey = sum[:]
		}
	}
	if h := v.Hooks; h != nil {
		r.onPublish, r.onUnpublish = h.OnPublish, h.OnUnpublish
		r.onPlay, r.onStop = h.OnPlay, h.OnStop
	}
	return r
}

// prefixes parses a list of IPs and CIDRs. configs.Validate rejects bad
// entries; one that got here anyway is logged and matches nobody, and
// in an allow list it still makes the list non-empty (fail closed).
func (g *Guard) prefixes(key string, list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, unmapPrefix(p.Masked()))
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.WithZone("").Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		g.log.Error("access rule ignored: not an IP or CIDR", "key", key, "value", s)
		out = append(out, netip.Prefix{}) // invalid: Contains is always false
	}
	return out
}

// unmapPrefix turns ::ffff:10.0.0.0/104 into 10.0.0.0/8, so that it
// matches the (unmapped) IPv4 addresses it means.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func (g *Guard) vhost(name string) *vhostRules {
	return (*g.rules.Load())[name]
}

// Publish returns nil when r may publish, else a *Denied that says why
// (Error() is safe to log; ClientMessage is what to send to the client).
// A push forwarded from a master is an ordinary publish: the master's IP
// and the key in its destination URL are checked like any encoder's.
func (g *Guard) Publish(ctx context.Context, r Request) error {
	if g == nil {
		return nil
	}
	v := g.vhost(r.Vhost)
	if v == nil {
		return nil
	}
	const action = "publish"
	if err := checkIP(action, r.IP, v.publishAllow, v.publishDeny); err != nil {
		return err
	}
	if v.publishKey != nil {
		if err := checkKey(r.Param, v.publishKey); err != nil {
			return err
		}
	}
	return g.check(ctx, action, "on_publish", v.onPublish, r)
}

// Play returns nil when r may play, else a *Denied.
func (g *Guard) Play(ctx context.Context, r Request) error {
	if g == nil {
		return nil
	}
	v := g.vhost(r.Vhost)
	if v == nil {
		return nil
	}
	const action = "play"
	if err := checkIP(action, r.IP, v.playAllow, v.playDeny); err != nil {
		return err
	}
	return g.check(ctx, action, "on_play", v.onPlay, r)
}

// Unpublished notifies on_unpublish for a publish that Publish allowed.
// It returns at once; the hooks run in the background (see Wait).
func (g *Guard) Unpublished(r Request) {
	if g == nil {
		return
	}
	if v := g.vhost(r.Vhost); v != nil {
		g.notify("on_unpublish", v.onUnpublish, r)
	}
}

// Stopped notifies on_stop for a play that Play allowed.
func (g *Guard) Stopped(r Request) {
	if g == nil {
		return
	}
	if v := g.vhost(r.Vhost); v != nil {
		g.notify("on_stop", v.onStop, r)
	}
}

// Wait returns when the on_unpublish and on_stop calls in flight have
// ended (each bounded by the hook timeout).
func (g *Guard) Wait() {
	if g != nil && g.hooks != nil {
		g.hooks.Wait()
	}
}

// checkIP applies a deny list, then an allow list (empty: everyone).
func checkIP(action, ip string, allow, deny []netip.Prefix) error {
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	a, ok := parseIP(ip)
	if !ok {
		return &Denied{Action: action, Reason: ReasonIPDenied, Detail: fmt.Sprintf("client address %q is not an IP", ip)}
	}
	for _, p := range deny {
		if p.Contains(a) {
			return &Denied{Action: action, Reason: ReasonIPDenied,
				Detail: fmt.Sprintf("%s matches %s_deny %s", a, action, p)}
		}
	}
	if len(allow) == 0 {
		return nil
	}
	for _, p := range allow {
		if p.Contains(a) {
			return nil
		}
	}
	return &Denied{Action: action, Reason: ReasonIPDenied, Detail: fmt.Sprintf("%s not in %s_allow", a, action)}
}

// parseIP reads a client address: an IP, or host:port, IPv4-mapped IPv6
// unmapped, zone dropped.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		host, _, serr := net.SplitHostPort(s)
		if serr != nil {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}

// checkKey compares the request's key= with the vhost's publish key in
// constant time (over SHA-256 sums, so not even the length leaks).
func checkKey(param string, want []byte) error {
	// ParseQuery keeps the well-formed pairs of a query with bad ones.
	q, _ := url.ParseQuery(strings.TrimPrefix(param, "?"))
	keys, ok := q["key"]
	if !ok || len(keys) == 0 || keys[0] == "" {
		return &Denied{Action: "publish", Reason: ReasonKeyMissing}
	}
	got := sha256.Sum256([]byte(keys[0]))
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return &Denied{Action: "publish", Reason: ReasonKeyWrong}
	}
	return nil
}

// check calls the gate hooks in order; the first failure denies.
func (g *Guard) check(ctx context.Context, action, hook string, urls []string, r Request) error {
	if len(urls) == 0 {
		return nil
	}
	if g.hooks == nil {
		return &Denied{Action: action, Reason: ReasonHookRejected, Detail: hook + " configured but no hook client"}
	}
	// The hook client bounds each call (5 s by default).
	if err := g.hooks.Check(ctx, urls, g.event(hook, r)); err != nil {
		return &Denied{Action: action, Reason: ReasonHookRejected, Detail: hook, Err: err}
	}
	return nil
}

func (g *Guard) notify(hook string, urls []string, r Request) {
	if len(urls) == 0 {
		return
	}
	if g.hooks == nil {
		g.log.Warn("hook not called: no hook client", "hook", hook)
		return
	}
	g.hooks.Notify(urls, g.event(hook, r))
}

// event is the SRS body: param keeps SRS's leading "?".
func (g *Guard) event(action string, r Request) hooks.Event {
	param := strings.TrimPrefix(r.Param, "?")
	if param != "" {
		param = "?" + param
	}
	ip := r.IP
	if a, ok := parseIP(ip); ok {
		ip = a.String()
	}
	return hooks.Event{
		Action: action, ServerID: g.ServerID, ClientID: r.ClientID, IP: ip,
		Vhost: r.Vhost, App: r.App, Stream: r.Stream, Param: param, TcURL: r.TcURL,
	}
}
