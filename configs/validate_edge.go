package configs

import (
	"fmt"
	"time"
)

func (p *problems) vhostCluster(key string, c *VhostCluster, registry bool) {
	p.oneOf(key+".mode", c.Mode, ClusterLocal, ClusterRemote)
	if c.Mode == ClusterRemote && len(c.Origin) == 0 {
		p.add(key+".origin", "required when mode is remote (host:port, rtmp:// URL or group:NAME)")
	}
	for i, o := range c.Origin {
		if p.groupRef(fmt.Sprintf("%s.origin[%d]", key, i), o, registry) {
			continue
		}
		if !isDestination(o) {
			p.add(fmt.Sprintf("%s.origin[%d]", key, i), "not host:port or rtmp:// URL (got %q)", redactURL(o))
		}
	}
	if c.Vhost != "" && !isName(c.Vhost) {
		p.add(key+".vhost", "use only letters, digits, _ - . (got %q)", c.Vhost)
	}
	for _, d := range []struct {
		name     string
		v        Duration
		min, max time.Duration
	}{
		{"connect_timeout", c.ConnectTimeout, 100 * time.Millisecond, time.Minute},
		{"idle_timeout", c.IdleTimeout, 100 * time.Millisecond, time.Minute},
		{"idle_close", c.IdleClose, 0, time.Hour},
		{"origin_backoff", c.OriginBackoff, 0, time.Hour},
	} {
		if d.v.Std() < d.min || d.v.Std() > d.max {
			p.add(key+"."+d.name, "must be between %s and %s (got %s)", Duration(d.min), Duration(d.max), d.v)
		}
	}
}
