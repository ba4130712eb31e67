// Package redact keeps secrets out of everything Podium prints: the
// effective config (`podium check`), logs, the API and the dashboard. It
// knows three kinds of secret: a config key whose whole value is one
// (admin_password, publish_key, play_secret...), the userinfo of a URL
// (rtsp://user:pass@cam, redis://:pass@host), and the value of a
// secret-looking query parameter (?key=, ?token=, ?secret=...).
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a URL's userinfo and a secret parameter's value.
const Mask = "xxx"

// Value replaces the whole value of a secret config key.
const Value = "<redacted, see --show-secrets>"

// params are the query parameters whose values are secrets.
var params = []string{"key", "token", "secret", "password", "pass", "passwd", "auth", "sign", "signature", "access_token", "api_key", "apikey"}

// Param reports whether a query parameter carries a secret.
func Param(name string) bool {
	n := strings.ToLower(name)
	for _, s := range params {
		if n == s {
			return true
		}
	}
	return false
}

// keyWords are the words that make a config key a secret: every key whose
// name contains one (admin_password, play_secret, api_token, publish_key,
// redis_password) is printed as Value. A new secret key therefore needs no
// registration, only a name that says what it is.
var keyWords = []string{"password", "passwd", "secret", "token", "credential"}

// Key reports whether a config key (a YAML name such as "admin_password")
// holds a secret as its whole value.
func Key(name string) bool {
	n := strings.ToLower(name)
	if n == "key" || strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "-key") {
		return true
	}
	for _, w := range keyWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL hides a URL's userinfo and its secret query values. A string that
// does not parse as a URL is not shown at all.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if Param(k) {
				q[k] = []string{Mask}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

var (
	textParam    = regexp.MustCompile(`(?i)\b(key|token|secret|password|pass|passwd|auth|sign|signature|access_token|api_key|apikey)=[^&\s"'#]*`)
	textUserinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s"']*@`)
)

// Text hides the secrets of every URL or query inside free text (an error
// message, a stats field), whatever a producer forgot to redact.
func Text(s string) string {
	if s == "" || !strings.ContainsAny(s, "=@") {
		return s
	}
	s = textParam.ReplaceAllString(s, "${1}="+Mask)
	return textUserinfo.ReplaceAllString(s, "${1}"+Mask+"@")
}

// Texts applies Text to each string.
func Texts(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Text(s)
	}
	return out
}
