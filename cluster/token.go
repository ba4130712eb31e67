package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Play tokens (cluster.play_secret): EXPIRY.HEX, where EXPIRY is a unix
// time in seconds and HEX is hex(HMAC-SHA256(play_secret,
// "APP/STREAM/EXPIRY")). An LMS makes one for /api/v1/play?token=; the
// allocator puts a fresh one (expiring with the session) on every URL it
// hands out, and the serving box checks it on playlists and FLV.

// SignToken returns the token for app/stream valid until exp.
func SignToken(secret, app, stream string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + tokenMAC(secret, app, stream, e)
}

func tokenMAC(secret, app, stream, exp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(app + "/" + stream + "/" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckToken reports whether tok is a valid, unexpired token for
// app/stream.
func CheckToken(secret, app, stream, tok string, now time.Time) bool {
	e, mac, ok := strings.Cut(tok, ".")
	if !ok || len(e) > 12 || len(mac) != sha256.Size*2 {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || now.Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(tokenMAC(secret, app, stream, e)))
}
