package ui

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/podiumlive/podium/ingest/stream"
)

func sessionFrom(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", res.Header["Set-Cookie"])
	return nil
}

func TestLoginSession(t *testing.T) {
	f := newFixture(t)
	jsonCT := []string{"Content-Type", "application/json"}

	res, b := f.request(http.MethodPost, "/login", false, []byte(`{"password":"nope"}`), jsonCT...)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", b)
	require.Empty(t, res.Cookies())

	for _, bad := range []string{`{"password":`, `[1,2]`, `{"password":"x","extra":1}`, `"str"`, ``} {
		res, b = f.request(http.MethodPost, "/login", false, []byte(bad), jsonCT...)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%q: %s", bad, b)
		require.Equal(t, codeBadRequest, decode[streamBody](t, b).Code)
	}
	huge := []byte(`{"password":"` + strings.Repeat("a", 1<<20) + `"}`)
	res, _ = f.request(http.MethodPost, "/login", false, huge, jsonCT...)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)

	res, b = f.request(http.MethodPost, "/login", false, []byte(`{"password":"`+testPassword+`"}`), jsonCT...)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	ck := sessionFrom(t, res)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.Equal(t, "/", ck.Path)
	require.Positive(t, ck.MaxAge)
	require.GreaterOrEqual(t, len(ck.Value), 40)
	cookie := []string{"Cookie", sessionCookie + "=" + ck.Value}

	for _, path := range []string{"/", "/api/v1/streams", "/metrics"} {
		res, _ = f.request(http.MethodGet, path, false, nil, cookie...)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
	}
	res, _ = f.request(http.MethodGet, "/api/v1/streams", false, nil, "Cookie", sessionCookie+"=forged")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	// A form login (no JavaScript) redirects.
	res, _ = f.request(http.MethodPost, "/login", false, []byte("password="+testPassword), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/", res.Header.Get("Location"))
	sessionFrom(t, res)
	res, _ = f.request(http.MethodPost, "/login", false, []byte("password=wrong"), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login?error=1", res.Header.Get("Location"))

	// Logout ends the session.
	res, _ = f.request(http.MethodPost, "/logout", false, nil, cookie...)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = f.request(http.MethodGet, "/api/v1/streams", false, nil, cookie...)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestLoginRateLimitPerIP(t *testing.T) {
	f := newFixture(t, func(_ *Deps, o *Options) { o.LoginBurst = 3; o.LoginRefill = time.Hour })
	h := f.ui.Handler()
	try := func(ip, pass string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/streams", nil)
		req.RemoteAddr = ip + ":40000"
		req.SetBasicAuth(AdminUser, pass)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, try("10.0.0.1", "wrong").Code)
	}
	// Limited: even the right password is not checked now.
	rec := try("10.0.0.1", "wrong")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Equal(t, http.StatusTooManyRequests, try("10.0.0.1", testPassword).Code)
	// The dashboard's login form is limited the same way.
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{"password":"`+testPassword+`"}`))
	req.RemoteAddr = "10.0.0.1:1"
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	// Another address is not.
	require.Equal(t, http.StatusOK, try("10.0.0.2", testPassword).Code)
	// Successes cost nothing: many in a row pass.
	for range 10 {
		require.Equal(t, http.StatusOK, try("10.0.0.3", testPassword).Code)
	}
	// IPv6 clients are counted by /64.
	for i := range 3 {
		require.Equal(t, http.StatusUnauthorized, try("[2001:db8::"+string(rune('1'+i))+"]", "wrong").Code)
	}
	require.Equal(t, http.StatusTooManyRequests, try("[2001:db8::ff]", "wrong").Code)
	require.Positive(t, f.ui.auth.limited.Load())
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(2, time.Minute, 100)
	now := time.Now()
	for i := range 10_000 {
		l.take("ip"+strings.Repeat("x", i%7)+string(rune(i)), now)
	}
	require.LessOrEqual(t, len(l.buckets), 100)
	// Refill: after a minute one attempt is back.
	require.True(t, l.take("a", now))
	require.True(t, l.take("a", now))
	require.False(t, l.take("a", now))
	require.False(t, l.take("a", now.Add(59*time.Second)))
	require.True(t, l.take("a", now.Add(61*time.Second)))
	l.sweep(now.Add(time.Hour))
	require.Empty(t, l.buckets)
}

var noticePassword = regexp.MustCompile(`password: (\S+)`)

func TestGeneratedPasswordPrintedOnceHashKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	var notice bytes.Buffer
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	u, err := New(Deps{Hub: hub}, Options{DataDir: dir, Notice: &notice}, log)
	require.NoError(t, err)
	m := noticePassword.FindStringSubmatch(notice.String())
	require.NotNil(t, m, "no password in %q", notice.String())
	password := m[1]
	require.Len(t, password, 24)
	require.NotContains(t, logs.String(), password, "the password reached the log")

	path := filepath.Join(dir, HashFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	h, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(h), password)
	require.NoError(t, bcrypt.CompareHashAndPassword(bytes.TrimSpace(h), []byte(password)))

	basic := func(u *UI, pass string) int {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/versions", nil)
		req.SetBasicAuth(AdminUser, pass)
		rec := httptest.NewRecorder()
		u.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusOK, basic(u, password))
	require.Equal(t, http.StatusOK, basic(u, password)) // the cached path
	require.Equal(t, http.StatusUnauthorized, basic(u, password+"x"))

	// A restart reuses the hash and prints nothing.
	notice.Reset()
	u2, err := New(Deps{Hub: hub}, Options{DataDir: dir, Notice: &notice}, log)
	require.NoError(t, err)
	require.Empty(t, notice.String())
	require.Equal(t, http.StatusOK, basic(u2, password))
	require.NotContains(t, logs.String(), password)

	// A config password wins over the file.
	u3, err := New(Deps{Hub: hub}, Options{DataDir: dir, AdminPassword: "from-config", Notice: &notice}, log)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, basic(u3, "from-config"))
	require.Equal(t, http.StatusUnauthorized, basic(u3, password))

	// A damaged hash file stops the start instead of opening the door.
	require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
	_, err = New(Deps{Hub: hub}, Options{DataDir: dir, Notice: &notice}, log)
	require.ErrorContains(t, err, "not a bcrypt hash")
}

func TestVerifyBoundsBcrypt(t *testing.T) {
	a := &auth{hash: mustHash(t, "pw"), macKey: randomBytes(32), checking: make(chan struct{}, 1)}
	ok, err := a.verify(context.Background(), strings.Repeat("p", 100))
	require.NoError(t, err)
	require.False(t, ok, "over bcrypt's 72 bytes: refused unchecked")
	// While another check holds the slot, a caller whose context ends
	// gives up.
	a.checking <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = a.verify(ctx, "pw")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	<-a.checking
	ok, err = a.verify(context.Background(), "pw")
	require.NoError(t, err)
	require.True(t, ok)
}

func mustHash(t *testing.T, pw string) []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	require.NoError(t, err)
	return h
}

func TestSessionsBounded(t *testing.T) {
	a := &auth{ttl: time.Hour, sessions: map[string]time.Time{}}
	now := time.Now()
	first := a.newSession(now)
	for i := range maxSessions + 50 {
		a.newSession(now.Add(time.Duration(i+1) * time.Millisecond))
	}
	require.Len(t, a.sessions, maxSessions)
	require.False(t, a.session(first, now), "the oldest session went first")
	tok := a.newSession(now)
	require.True(t, a.session(tok, now))
	require.False(t, a.session(tok, now.Add(2*time.Hour)), "expired")
}
