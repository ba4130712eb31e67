package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podiumlive/podium/internal/redact"
)

// ValidationError is one problem with one key. Key is the key's full path
// as a user would write it (vhosts[1].forward.destinations[0]) or, for a
// stray environment variable, its name.
type ValidationError struct {
	Key string
	Msg string
}

func (e *ValidationError) Error() string { return e.Key + ": " + e.Msg }

// isName reports whether s is a valid vhost, app or stream name: one or
// more of [0-9A-Za-z_.-].
func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// sampleRates are the AAC sample rates a transcode may produce.
func sampleRates() []int {
	return []int{8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000}
}

// problems collects ValidationErrors in order.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &ValidationError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		p.add(key, "not one of %s (got %q)", strings.Join(allowed, "|"), val)
	}
}

// Validate reports every problem of c, each a *ValidationError naming its
// key, joined with errors.Join; nil if there is none.
func (c *Config) Validate() error {
	var p problems
	p.listen("listen.rtmp", c.Listen.RTMP, true)
	p.listen("listen.http", c.Listen.HTTP, true)
	p.listen("listen.rtsp", c.Listen.RTSP, false)
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	if strings.TrimSpace(c.DataDir) == "" {
		p.add("data_dir", "required")
	}
	p.hwaccel(c.HWAccel)
	if c.RTMP.HandshakeTimeout <= 0 {
		p.add("rtmp.handshake_timeout", "must be more than 0s")
	}
	if c.RTMP.PlayWait < 0 {
		p.add("rtmp.play_wait", "must not be negative")
	}
	if c.RTMP.QueuePackets < 1 {
		p.add("rtmp.queue_packets", "must be at least 1")
	}
	names := vhostIndex(c)
	p.vhosts(c, names)
	for i, s := range c.Sources {
		p.source(names, fmt.Sprintf("sources[%d]", i), s)
	}
	p.cluster(c.Cluster)
	return errors.Join(p...)
}

func (p *problems) listen(key, addr string, required bool) {
	if addr == "" {
		if required {
			p.add(key, "required (host:port, e.g. \":1935\")")
		}
		return
	}
	if !isHostPort(addr) {
		p.add(key, "not host:port, e.g. \":1935\" or \"0.0.0.0:1935\" (got %q)", addr)
	}
}

func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /?#@") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && strconv.Itoa(n) == port
}

func (p *problems) hwaccel(h HWAccel) {
	if len(h.Prefer) == 0 {
		p.add("hwaccel.prefer", "must list at least one of nvenc|qsv|vaapi|software, or none")
	}
	for i, e := range h.Prefer {
		key := fmt.Sprintf("hwaccel.prefer[%d]", i)
		p.oneOf(key, e, "nvenc", "qsv", "vaapi", "software", "none")
		if e == "none" && len(h.Prefer) > 1 {
			p.add(key, "none forces the CPU and must be the only entry")
		}
	}
}

// vhostIndex maps each vhost name to the index of its first vhost.
func vhostIndex(c *Config) map[string]int {
	idx := make(map[string]int, len(c.Vhosts))
	for i, v := range c.Vhosts {
		if _, dup := idx[v.Name]; !dup {
			idx[v.Name] = i
		}
	}
	return idx
}

func (p *problems) vhosts(c *Config, names map[string]int) {
	loops := transcodeLoops(c, names)
	seen := map[string]int{}
	for i, v := range c.Vhosts {
		key := fmt.Sprintf("vhosts[%d]", i)
		switch {
		case v.Name == "":
			p.add(key+".name", "required")
		case !isName(v.Name):
			p.add(key+".name", "use only letters, digits, _ - . (got %q)", v.Name)
		default:
			if j, dup := seen[v.Name]; dup {
				p.add(key+".name", "duplicate name %q (also vhosts[%d])", v.Name, j)
			} else {
				seen[v.Name] = i
			}
		}
	}
	if _, ok := seen[DefaultVhost]; !ok {
		p.add("vhosts", "no vhost named %s (streams that name no vhost land there)", DefaultVhost)
	}
	for i, v := range c.Vhosts {
		key := fmt.Sprintf("vhosts[%d]", i)
		if v.Transcode != nil {
			p.transcode(names, loops[i], key+".transcode", v)
		}
		if v.Forward != nil {
			p.forward(key+".forward", v.Forward, c.Cluster != nil)
		}
		if v.HLS != nil {
			p.hls(key+".hls", v.HLS)
		}
		if v.Hooks != nil {
			p.hooks(key+".hooks", v.Hooks)
		}
		if v.Security != nil {
			p.security(key+".security", v.Security)
		}
		if v.DVR != nil {
			p.dvr(key+".dvr", v.DVR)
		}
		if v.Cluster != nil {
			p.vhostCluster(key+".cluster", v.Cluster, c.Cluster != nil)
		}
	}
}

func (p *problems) transcode(names map[string]int, loop []string, key string, v Vhost) {
	t := v.Transcode
	switch {
	case t.To == "":
		p.add(key+".to", "required (the vhost that receives the transcoded streams)")
	case t.To == v.Name:
		p.add(key+".to", "names this vhost itself (got %q)", t.To)
	case !hasKey(names, t.To):
		p.add(key+".to", "no vhost named %q", t.To)
	default:
		if loop != nil {
			p.add(key+".to", "transcode loop: %s", strings.Join(loop, " -> "))
		}
	}
	if t.Suffix != "" && !isName(t.Suffix) {
		p.add(key+".suffix", "use only letters, digits, _ - . (got %q)", t.Suffix)
	}
	a := t.Audio
	p.oneOf(key+".audio.codec", a.Codec, "aac", "copy")
	if a.Bitrate <= 0 {
		p.add(key+".audio.bitrate", "must be more than 0")
	}
	if !slices.Contains(sampleRates(), a.SampleRate) {
		p.add(key+".audio.sample_rate", "not one of %s (got %d)", strings.Trim(fmt.Sprint(sampleRates()), "[]"), a.SampleRate)
	}
	if a.Channels < 0 || a.Channels > 2 {
		p.add(key+".audio.channels", "not 0 (keep), 1 or 2 (got %d)", a.Channels)
	}
	vd := t.Video
	p.oneOf(key+".video.codec", vd.Codec, "copy", "h264")
	if vd.Bitrate <= 0 {
		p.add(key+".video.bitrate", "must be more than 0")
	}
	for _, d := range []struct {
		name string
		val  int
	}{{"width", vd.Width}, {"height", vd.Height}} {
		if d.val < 0 || d.val%2 != 0 {
			p.add(key+".video."+d.name, "not an even number >= 0, 0 = keep the input's (got %d)", d.val)
		}
	}
	if vd.FPS < 0 || vd.FPS > 240 {
		p.add(key+".video.fps", "not 0 (keep) to 240 (got %d)", vd.FPS)
	}
	if vd.GOP < 0 {
		p.add(key+".video.gop", "must not be negative")
	}
	p.oneOf(key+".video.profile", vd.Profile, "", "baseline", "main", "high")
	// x264's names; hwaccel maps them onto each hardware encoder's scale.
	p.oneOf(key+".video.preset", vd.Preset, "", "ultrafast", "superfast", "veryfast", "faster", "fast",
		"medium", "slow", "slower", "veryslow", "placebo")
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// transcodeLoops finds the loops that following transcode.to makes (a
// vhost naming itself is reported on its own). Each loop is keyed by the
// index of its first vhost and reads "a -> b -> a" from there, so it is
// reported once. It runs in linear time whatever the config's size.
func transcodeLoops(c *Config, names map[string]int) map[int][]string {
	next := func(i int) int {
		t := c.Vhosts[i].Transcode
		if t == nil || t.To == c.Vhosts[i].Name {
			return -1
		}
		if j, ok := names[t.To]; ok {
			return j
		}
		return -1
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(c.Vhosts))
	loops := map[int][]string{}
	for i := range c.Vhosts {
		var path []int
		j := i
		for j >= 0 && state[j] == unseen {
			state[j] = onPath
			path = append(path, j)
			j = next(j)
		}
		if j >= 0 && state[j] == onPath {
			loop := path[slices.Index(path, j):]
			first := slices.Index(loop, slices.Min(loop))
			var chain []string
			for k := range len(loop) + 1 {
				chain = append(chain, c.Vhosts[loop[(first+k)%len(loop)]].Name)
			}
			loops[loop[first]] = chain
		}
		for _, k := range path {
			state[k] = done
		}
	}
	return loops
}

func (p *problems) forward(key string, f *Forward, registry bool) {
	for i, d := range f.Destinations {
		if p.groupRef(fmt.Sprintf("%s.destinations[%d]", key, i), d, registry) {
			continue
		}
		if !isDestination(d) {
			p.add(fmt.Sprintf("%s.destinations[%d]", key, i), "not host:port or rtmp:// URL (got %q)", redactURL(d))
		}
	}
	if f.Backend != "" && !isHTTPURL(f.Backend) {
		p.add(key+".backend", "not an http:// or https:// URL (got %q)", redactURL(f.Backend))
	}
	if f.HopLimit < 1 {
		p.add(key+".hop_limit", "must be at least 1")
	}
}

// isDestination accepts host:port and rtmp://host[:port]/... with SRS
// placeholders [app] [stream] [vhost] [param].
// groupRef checks a "group:NAME" destination or origin; false when dest
// names no group (then it is a box's address). A group is found in the
// registry, so it needs the top-level cluster section.
func (p *problems) groupRef(key, dest string, registry bool) bool {
	name, ok := GroupName(dest)
	if !ok {
		return false
	}
	switch {
	case !isName(name) || len(name) > 64:
		p.add(key, "not a group name after group: (1 to 64 of 0-9 A-Z a-z _ . -, got %q)", name)
	case !registry:
		p.add(key, "%s needs the top-level cluster section (the registry that knows the group's members)", dest)
	}
	return true
}

func isDestination(s string) bool {
	r := strings.NewReplacer("[app]", "app", "[stream]", "stream", "[vhost]", "vhost", "[param]", "param")
	s = r.Replace(s)
	if !strings.Contains(s, "://") {
		return isHostPort(s) && !strings.HasPrefix(s, ":")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "rtmp" || u.Hostname() == "" || u.User != nil {
		return false
	}
	if port := u.Port(); port != "" {
		return isHostPort(u.Host)
	}
	return !strings.HasSuffix(u.Host, ":")
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

func (p *problems) hls(key string, h *HLS) {
	if h.Fragment < Duration(time.Second) {
		p.add(key+".fragment", "must be at least 1s (got %s)", h.Fragment)
	}
	if h.Window < 2 {
		p.add(key+".window", "must be at least 2 segments (got %d)", h.Window)
	}
	if strings.TrimSpace(h.Path) == "" {
		p.add(key+".path", "required")
	}
	p.oneOf(key+".variant", h.Variant, "mpegts", "fmp4")
	if h.Dispose < 0 {
		p.add(key+".dispose", "must not be negative")
	}
}

func (p *problems) hooks(key string, h *Hooks) {
	for _, l := range []struct {
		name string
		urls []string
	}{
		{"on_publish", h.OnPublish}, {"on_unpublish", h.OnUnpublish}, {"on_play", h.OnPlay},
		{"on_stop", h.OnStop}, {"on_hls", h.OnHLS}, {"on_dvr", h.OnDVR},
	} {
		for i, u := range l.urls {
			if !isHTTPURL(u) {
				p.add(fmt.Sprintf("%s.%s[%d]", key, l.name, i), "not an http:// or https:// URL (got %q)", redactURL(u))
			}
		}
	}
}

func (p *problems) security(key string, s *Security) {
	for _, l := range []struct {
		name string
		nets []string
	}{
		{"publish_allow", s.PublishAllow}, {"publish_deny", s.PublishDeny},
		{"play_allow", s.PlayAllow}, {"play_deny", s.PlayDeny},
	} {
		for i, n := range l.nets {
			if _, err := netip.ParsePrefix(n); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(n); err == nil {
				continue
			}
			p.add(fmt.Sprintf("%s.%s[%d]", key, l.name, i), "not an IP address or CIDR like 10.0.0.0/8 (got %q)", n)
		}
	}
}

func (p *problems) source(names map[string]int, key string, s Source) {
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Hostname() == "" {
		p.add(key+".url", "not an rtsp:// or rtsps:// URL (got %q)", redactURL(s.URL))
	}
	app, stream, ok := strings.Cut(s.Publish, "/")
	if !ok || !isStreamName(app) || !isStreamName(stream) {
		p.add(key+".publish", "not APP/STREAM of letters, digits, _ - . (got %q)", s.Publish)
	}
	if !hasKey(names, s.Vhost) {
		p.add(key+".vhost", "no vhost named %q", s.Vhost)
	}
	p.oneOf(key+".transport", s.Transport, "auto", "tcp", "udp")
}

func isStreamName(s string) bool {
	return isName(s) && s != "." && s != ".." && len(s) <= 128
}

// redactURL hides a URL's credentials in messages: camera, hook and
// destination URLs carry them. What does not parse is cut before its '@'
// and scrubbed as text.
func redactURL(raw string) string {
	if _, err := url.Parse(raw); err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			raw = redact.Mask + raw[i:]
		}
		return redact.Text(raw)
	}
	return redact.URL(raw)
}
