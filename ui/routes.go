package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed assets
var assetFS embed.FS

// maxLoginBody bounds a login request's body.
const maxLoginBody = 4 << 10

// uiHeader marks the dashboard's own fetches: their 401s carry no
// WWW-Authenticate, so the browser shows our login page, not its dialog.
const uiHeader = "X-Podium-UI"

func (u *UI) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode) // no route dump on stdout
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	_ = e.SetTrustedProxies(nil) // clients are who the socket says
	e.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
		u.log.Error("ui handler panic", "path", c.Request.URL.Path, "err", err)
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	e.Use(securityHeaders)

	// Public: the login page, its assets, and the login itself.
	e.GET("/login", u.loginPage)
	e.POST("/login", u.login)
	e.POST("/logout", u.logout)
	e.GET("/assets/*file", serveAsset)
	e.HEAD("/assets/*file", serveAsset)
	e.GET("/favicon.ico", func(c *gin.Context) { c.Status(http.StatusNoContent) })

	page := e.Group("/", u.require(kindPage))
	page.GET("/", u.dashboard)
	page.GET("/recordings", u.recordingsPage)

	api := e.Group("/api", u.require(kindAPI))
	v1 := api.Group("/v1")
	v1.GET("/versions", u.versions)
	v1.GET("/summaries", u.summaries)
	v1.GET("/streams", u.streams)
	v1.GET("/streams/", u.streams) // SRS clients ask for /api/v1/streams/?count=...
	v1.GET("/streams/:id", u.stream)
	v1.DELETE("/streams/:id", u.kick)
	v1.GET("/clients", u.clientsList)
	v1.GET("/clients/", u.clientsList)
	v1.GET("/forwards", u.forwards)
	v1.GET("/transcodes", u.transcodes)
	v1.GET("/hw", u.hw)
	v1.GET("/sources", u.sources)
	v1.GET("/events", u.live)
	v1.GET("/recordings", u.recordingsList)
	v1.GET("/recordings/:id/download", u.recordingDownload)
	v1.HEAD("/recordings/:id/download", u.recordingDownload)
	v1.DELETE("/recordings/:id", u.recordingDelete)
	u.clusterRoutes(e, v1)
	api.GET("/", u.apiIndex)
	api.GET("/v1", u.apiIndex)
	api.GET("/v1/", u.apiIndex)

	e.GET("/metrics", u.require(kindMetrics), u.metrics)
	e.GET("/debug/pprof/:profile", u.require(kindMetrics), u.pprof)

	// Unknown API paths and methods are 401 to anonymous callers too: the
	// API's shape is not public.
	apiAuth := u.require(kindAPI)
	e.NoRoute(func(c *gin.Context) {
		if isAPI(c.Request) {
			if apiAuth(c); c.IsAborted() {
				return
			}
			apiError(c, http.StatusNotFound, codeNotFound, "no such endpoint")
			return
		}
		c.String(http.StatusNotFound, "404 page not found\n")
	})
	e.NoMethod(func(c *gin.Context) {
		if isAPI(c.Request) {
			if apiAuth(c); c.IsAborted() {
				return
			}
			apiError(c, http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		c.String(http.StatusMethodNotAllowed, "405 method not allowed\n")
	})
	return e
}

// crossOrigin reports a state-changing request that a browser sent from
// another site's page. The session cookie is SameSite=Strict already; this
// is the second lock.
func crossOrigin(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false // not a browser, or a same-origin form in an old one
	}
	o, err := url.Parse(origin)
	return err != nil || o.Host != r.Host
}

func isAPI(r *http.Request) bool {
	return r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/")
}

func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// The dashboard plays HLS from this origin (blob: for MSE).
	h.Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
}

type authKind int

const (
	kindPage authKind = iota
	kindAPI
	kindMetrics
)

// require lets authenticated requests through and answers the rest:
// 401 JSON for the API, 401 text for /metrics, a redirect to the login
// page for the dashboard; 429 once an address has failed too often.
func (u *UI) require(kind authKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if crossOrigin(r) {
			apiError(c, http.StatusForbidden, http.StatusForbidden, "cross-origin request refused")
			return
		}
		res := u.auth.check(r)
		if res == authOK {
			c.Next()
			return
		}
		if res == authLimited {
			wait := u.auth.limiter.retryAfter(clientIP(r), time.Now())
			c.Header("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			if kind == kindPage {
				c.String(http.StatusTooManyRequests, "too many failed logins; try again later\n")
				c.Abort()
				return
			}
			apiError(c, http.StatusTooManyRequests, codeTooMany, errRateLimited.Error())
			return
		}
		if res == authBusy {
			apiError(c, http.StatusServiceUnavailable, codeBusy, errBusy.Error())
			return
		}
		if kind == kindPage {
			c.Redirect(http.StatusSeeOther, "/login")
			c.Abort()
			return
		}
		// Not for the dashboard's own requests (its fetches and its
		// EventSource): a browser would pop up its Basic dialog.
		if r.Header.Get(uiHeader) == "" && !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			c.Header("WWW-Authenticate", `Basic realm="Podium", charset="UTF-8"`)
		}
		if kind == kindMetrics {
			c.String(http.StatusUnauthorized, "401 unauthorized: /metrics needs the admin login (HTTP Basic admin:<password>)\n")
			c.Abort()
			return
		}
		apiError(c, http.StatusUnauthorized, codeUnauthorized, "authentication required: HTTP Basic admin:<password> or a dashboard login")
	}
}

func (u *UI) apiIndex(c *gin.Context) {
	e := u.envelope()
	e["urls"] = map[string]string{
		"versions":   "the version of Podium",
		"summaries":  "host and process figures, Podium's totals",
		"streams":    "every live stream; /streams/:id one; DELETE /streams/:id kicks its publisher",
		"clients":    "every publisher and reader",
		"forwards":   "every forward destination and its state",
		"transcodes": "every transcode job",
		"hw":         "the video encoders this box has (podium hw)",
		"sources":    "RTSP sources",
		"play":       "public: GET /api/v1/play?app=&stream= allocates a line by load; POST /api/v1/play/switch {\"session\"} moves it",
		"cluster":    "/cluster/nodes, /cluster/streams and /cluster/groups: what the cluster registry holds",
		"events":     "Server-Sent Events: a dashboard snapshot each second",
		"recordings": "recorded files (dvr); /recordings/:id/download the file; DELETE /recordings/:id",
	}
	writeJSON(c, http.StatusOK, e)
}

// loginRequest is the JSON login body (a form with "password" works too).
type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (u *UI) login(c *gin.Context) {
	r := c.Request
	// A body dribbled a byte a minute holds no goroutine for long.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(10 * time.Second))
	r.Body = http.MaxBytesReader(c.Writer, r.Body, maxLoginBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := ct == "application/json"
	var req loginRequest
	if isJSON {
		body, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(c, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "login body too large")
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err == nil {
			err = dec.Decode(&req)
		}
		if err == nil && dec.More() {
			err = errors.New("trailing data")
		}
		if err != nil {
			apiError(c, http.StatusBadRequest, codeBadRequest, "login body: not a JSON object {\"password\": ...}")
			return
		}
	} else {
		if err := r.ParseForm(); err != nil {
			c.String(http.StatusBadRequest, "bad login form\n")
			return
		}
		req.User, req.Password = r.PostForm.Get("user"), r.PostForm.Get("password")
	}
	if req.User != "" && req.User != AdminUser {
		req.Password = "" // counts as a failure below
	}
	ip := clientIP(r)
	ok, err := u.auth.login(r.Context(), ip, req.Password)
	if req.Password == "" && err == nil {
		ok = false
	}
	switch {
	case errors.Is(err, errRateLimited):
		wait := u.auth.limiter.retryAfter(ip, time.Now())
		c.Header("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		if !isJSON {
			c.Redirect(http.StatusSeeOther, "/login?error=limited")
			return
		}
		apiError(c, http.StatusTooManyRequests, codeTooMany, err.Error())
		return
	case err != nil:
		apiError(c, http.StatusServiceUnavailable, codeBusy, "password check: "+err.Error())
		return
	case !ok:
		if !isJSON {
			c.Redirect(http.StatusSeeOther, "/login?error=1")
			return
		}
		apiError(c, http.StatusUnauthorized, codeUnauthorized, "wrong password")
		return
	}
	token := u.auth.newSession(time.Now())
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/",
		MaxAge: int(u.opts.SessionTTL.Seconds()), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	u.log.Info("dashboard login", "ip", ip)
	if !isJSON {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	writeJSON(c, http.StatusOK, map[string]any{"code": codeOK})
}

func (u *UI) logout(c *gin.Context) {
	if ck, err := c.Request.Cookie(sessionCookie); err == nil {
		u.auth.endSession(ck.Value)
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.Request.TLS != nil,
	})
	c.Redirect(http.StatusSeeOther, "/login")
}

func (u *UI) loginPage(c *gin.Context) {
	servePage(c, "assets/login.html")
}

func (u *UI) dashboard(c *gin.Context) {
	servePage(c, "assets/index.html")
}

func servePage(c *gin.Context, name string) {
	b, err := assetFS.ReadFile(name)
	if err != nil {
		c.String(http.StatusInternalServerError, "missing page\n")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/html; charset=utf-8", b)
}

// serveAsset serves the embedded CSS, JS and vendored libraries. They hold
// nothing secret, so the login page can use them.
func serveAsset(c *gin.Context) {
	name := path.Clean("/" + c.Param("file"))
	if strings.HasSuffix(name, ".html") || strings.Contains(name, "..") {
		c.String(http.StatusNotFound, "404 page not found\n")
		return
	}
	full := "assets" + name
	b, err := fs.ReadFile(assetFS, full)
	if err != nil {
		c.String(http.StatusNotFound, "404 page not found\n")
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	if strings.HasPrefix(name, "/vendor/") {
		c.Header("Cache-Control", "public, max-age=86400")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	c.Data(http.StatusOK, ct, b)
}
