package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AdminUser is the only user name; HTTP Basic is admin:<password>.
const AdminUser = "admin"

// HashFile is the file in the data directory that keeps the bcrypt hash
// of a generated admin password.
const HashFile = "admin.hash"

// sessionCookie names the dashboard's login session.
const sessionCookie = "podium_session"

// bcryptCost is bcrypt's default: ~50 ms a check on one core. A verified
// password is remembered (as an HMAC under a per-process key) so that API
// clients sending Basic on every request pay it once.
const bcryptCost = bcrypt.DefaultCost

// maxPasswordLen is bcrypt's limit; longer inputs are rejected unchecked.
const maxPasswordLen = 72

// maxSessions bounds the session table; the oldest login goes first.
const maxSessions = 256

var (
	errRateLimited = errors.New("too many failed logins from this address")
	errBusy        = errors.New("password checks are busy")
)

// auth checks the admin password (config or generated hash), keeps login
// sessions, and rate-limits failures per client IP.
type auth struct {
	log *slog.Logger
	ttl time.Duration

	// Exactly one of plain (config password, as SHA-256) and hash
	// (bcrypt) is set.
	plain []byte
	hash  []byte

	macKey   []byte
	okMu     sync.Mutex
	okMAC    []byte        // HMAC of the last password bcrypt accepted
	checking chan struct{} // bounds concurrent bcrypt runs

	limiter *limiter
	failed  atomic.Uint64 // failed logins, for /metrics
	limited atomic.Uint64 // rejected by the rate limit, for /metrics

	mu       sync.Mutex
	sessions map[string]time.Time // sha256(token) -> expiry
}

func newAuth(opts Options, log *slog.Logger) (*auth, error) {
	a := &auth{
		log:      log,
		ttl:      opts.SessionTTL,
		macKey:   randomBytes(32),
		checking: make(chan struct{}, 1),
		limiter:  newLimiter(opts.LoginBurst, opts.LoginRefill, 4096),
		sessions: make(map[string]time.Time),
	}
	if opts.AdminPassword != "" {
		sum := sha256.Sum256([]byte(opts.AdminPassword))
		a.plain = sum[:]
		log.Info("dashboard password from config (auth.admin_password)")
		return a, nil
	}
	h, err := loadOrCreateHash(opts.DataDir, opts.Notice)
	if err != nil {
		return nil, err
	}
	a.hash = h
	return a, nil
}

// loadOrCreateHash reads DATA_DIR/admin.hash, or generates a password,
// prints it once to notice and stores only its bcrypt hash (mode 0600).
func loadOrCreateHash(dataDir string, notice io.Writer) ([]byte, error) {
	if dataDir == "" {
		dataDir = "."
	}
	path := filepath.Join(dataDir, HashFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		h := []byte(strings.TrimSpace(string(b)))
		if _, cerr := bcrypt.Cost(h); cerr != nil {
			return nil, fmt.Errorf("read admin password hash %s: not a bcrypt hash (delete it to generate a new password): %w", path, cerr)
		}
		return h, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read admin password hash: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir for admin password hash: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(randomBytes(18)) // 144 bits, 24 characters
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hash admin password: %w", err)
	}
	// O_EXCL: two processes on one data dir cannot both win.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write admin password hash: %w", err)
	}
	if _, err := f.Write(append(h, '\n')); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write admin password hash %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write admin password hash %s: %w", path, err)
	}
	// Printed once, here, and never logged: only the hash is kept.
	_, _ = fmt.Fprintf(notice, "\n"+
		"  Podium dashboard login (shown once; only its hash is kept in %s):\n"+
		"      user: %s\n"+
		"      password: %s\n"+
		"  To choose your own, set auth.admin_password in the config,\n"+
		"  or delete that file and restart for a new one.\n\n", path, AdminUser, password)
	return h, nil
}

// verify reports whether password is the admin password.
func (a *auth) verify(ctx context.Context, password string) (bool, error) {
	if len(password) == 0 || len(password) > maxPasswordLen {
		return false, nil
	}
	if a.plain != nil {
		sum := sha256.Sum256([]byte(password))
		return subtle.ConstantTimeCompare(sum[:], a.plain) == 1, nil
	}
	mac := hmac.New(sha256.New, a.macKey)
	mac.Write([]byte(password))
	sum := mac.Sum(nil)
	a.okMu.Lock()
	known := a.okMAC != nil && hmac.Equal(sum, a.okMAC)
	a.okMu.Unlock()
	if known {
		return true, nil
	}
	// bcrypt costs a core for ~50 ms: one at a time, whoever asks.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case a.checking <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, errBusy
	}
	err := bcrypt.CompareHashAndPassword(a.hash, []byte(password))
	<-a.checking
	if err != nil {
		return false, nil
	}
	a.okMu.Lock()
	a.okMAC = sum
	a.okMu.Unlock()
	return true, nil
}

// login checks a password from ip under the rate limit: a failure spends
// one of the address's attempts, and none left means errRateLimited
// without checking.
func (a *auth) login(ctx context.Context, ip, password string) (bool, error) {
	if !a.limiter.take(ip, time.Now()) {
		a.limited.Add(1)
		return false, errRateLimited
	}
	ok, err := a.verify(ctx, password)
	if err != nil {
		a.limiter.refund(ip)
		return false, err
	}
	if ok {
		a.limiter.refund(ip)
		return true, nil
	}
	a.failed.Add(1)
	a.log.Warn("dashboard login failed", "ip", ip)
	return false, nil
}

// newSession returns a fresh session token.
func (a *auth) newSession(now time.Time) string {
	token := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	key := sessionKey(token)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		var oldest string
		var oldestExp time.Time
		for k, exp := range a.sessions {
			if oldest == "" || exp.Before(oldestExp) {
				oldest, oldestExp = k, exp
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[key] = now.Add(a.ttl)
	return token
}

// session reports whether token is a live session.
func (a *auth) session(token string, now time.Time) bool {
	if token == "" || len(token) > 128 {
		return false
	}
	key := sessionKey(token)
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[key]
	if ok && now.After(exp) {
		delete(a.sessions, key)
		return false
	}
	return ok
}

func (a *auth) endSession(token string) {
	a.mu.Lock()
	delete(a.sessions, sessionKey(token))
	a.mu.Unlock()
}

// sweep forgets expired sessions and idle rate-limit entries.
func (a *auth) sweep(now time.Time) {
	a.mu.Lock()
	for k, exp := range a.sessions {
		if now.After(exp) {
			delete(a.sessions, k)
		}
	}
	a.mu.Unlock()
	a.limiter.sweep(now)
}

func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return string(sum[:])
}

// authenticated tells how a request proved itself, or why it did not.
type authResult int

const (
	authNone authResult = iota
	authOK
	authBad     // wrong credentials
	authLimited // too many failures from this address
	authBusy
)

// check authenticates r by session cookie or HTTP Basic.
func (a *auth) check(r *http.Request) authResult {
	if c, err := r.Cookie(sessionCookie); err == nil && a.session(c.Value, time.Now()) {
		return authOK
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return authNone
	}
	if user != AdminUser {
		// Still spends an attempt: user names are not a side channel.
		if !a.limiter.take(clientIP(r), time.Now()) {
			a.limited.Add(1)
			return authLimited
		}
		a.failed.Add(1)
		return authBad
	}
	good, err := a.login(r.Context(), clientIP(r), pass)
	switch {
	case errors.Is(err, errRateLimited):
		return authLimited
	case err != nil:
		return authBusy
	case good:
		return authOK
	}
	return authBad
}

// clientIP is the peer's address without port; IPv6 peers are counted by
// /64, the block one subscriber usually holds.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (it panics if it could)
	return b
}

func randomID(n int) string {
	return hex.EncodeToString(randomBytes(n))
}
