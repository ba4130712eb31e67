package configs

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// cluster validates the cluster section (nil: a box alone, nothing to
// check).
func (p *problems) cluster(c *Cluster) {
	if c == nil {
		return
	}
	if c.Redis != "" {
		if msg := redisURLProblem(c.Redis); msg != "" {
			p.add("cluster.redis", "%s (got %q)", msg, redactURL(c.Redis))
		}
	}
	if c.Node != "" && !isName(c.Node) {
		p.add("cluster.node", "not a node id: one or more of 0-9 A-Z a-z _ . - (got %q)", c.Node)
	}
	if len(c.Node) > 64 {
		p.add("cluster.node", "longer than 64 characters")
	}
	if len(c.Line) > 64 {
		p.add("cluster.line", "longer than 64 characters")
	}
	for _, r := range c.Line {
		if unicode.IsControl(r) {
			p.add("cluster.line", "has a control character")
			break
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			p.add("cluster.public_url", "not a base URL like http://10.0.0.6:8080 (got %q)", redactURL(c.PublicURL))
		}
	}
	if c.MaxViewers < 0 {
		p.add("cluster.max_viewers", "must not be negative (0 = no limit)")
	}
	if hb := c.Heartbeat.Std(); hb < 100*time.Millisecond || hb > time.Minute {
		p.add("cluster.heartbeat", "must be between 100ms and 1m (got %s)", c.Heartbeat)
	}
	if c.Group != "" && (!isName(c.Group) || len(c.Group) > 64) {
		p.add("cluster.group", "not a group name: 1 to 64 of 0-9 A-Z a-z _ . - (got %q)", c.Group)
	}
	if c.RTMP != "" && !isHostPort(c.RTMP) {
		p.add("cluster.rtmp", "not host:port (got %q)", c.RTMP)
	}
	if c.PlaySecret != "" && len(c.PlaySecret) < 16 {
		p.add("cluster.play_secret", "too short: at least 16 characters")
	}
}

// redisURLProblem checks redis://[:password@]host:port/db (rediss:// for
// TLS); "" when it is one. The check is ours: configs does not import
// go-redis (only cluster/ does), and the shape is small.
func redisURLProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL like redis://127.0.0.1:6379/0"
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return "scheme must be redis:// or rediss://"
	}
	if u.Host == "" || u.Hostname() == "" {
		return "no host: redis://HOST:PORT/DB"
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "port must be 1-65535"
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || n > 1<<16 {
			return "database must be a number (redis://HOST:PORT/0)"
		}
	}
	return ""
}
