package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// srsTTL is how long a stock SRS box's registration lives: three of SRS's
// default heartbeats (9.9 s in full.conf).
const srsTTL = 30 * time.Second

// maxSRSBody bounds a registration body.
const maxSRSBody = 16 << 10

// srsBody is SRS's heartbeat body (srs_app_heartbeat.cpp): device_id, ip,
// and with `ports on` server, service, pid, rtmp, http, api. Values are
// strings or lists of strings; pid is a string in SRS 6+ and a number in
// some builds, so every field is read loosely.
type srsBody struct {
	DeviceID json.RawMessage `json:"device_id"`
	IP       json.RawMessage `json:"ip"`
	Server   json.RawMessage `json:"server"`
	Service  json.RawMessage `json:"service"`
	PID      json.RawMessage `json:"pid"`
	RTMP     json.RawMessage `json:"rtmp"`
	HTTP     json.RawMessage `json:"http"`
	API      json.RawMessage `json:"api"`
}

// ParseSRS reads an SRS heartbeat body; remoteIP is used when it names no
// ip.
func ParseSRS(body []byte, remoteIP string) (SRSInfo, error) {
	if len(body) > maxSRSBody {
		return SRSInfo{}, errors.New("body too large")
	}
	var b srsBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return SRSInfo{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var info SRSInfo
	var err error
	str := func(name string, raw json.RawMessage, dst *string) {
		if err == nil {
			*dst, err = looseString(raw)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	list := func(name string, raw json.RawMessage, dst *[]string) {
		if err == nil {
			*dst, err = looseList(raw)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	str("device_id", b.DeviceID, &info.DeviceID)
	str("ip", b.IP, &info.IP)
	str("server", b.Server, &info.Server)
	str("service", b.Service, &info.Service)
	str("pid", b.PID, &info.PID)
	list("rtmp", b.RTMP, &info.RTMP)
	list("http", b.HTTP, &info.HTTP)
	list("api", b.API, &info.API)
	if err != nil {
		return SRSInfo{}, err
	}
	if info.IP == "" {
		info.IP = remoteIP
	}
	if ip := net.ParseIP(info.IP); ip == nil || ip.IsUnspecified() || ip.IsMulticast() {
		return SRSInfo{}, fmt.Errorf("ip: not an address (got %q)", info.IP)
	}
	if info.DeviceID == "" && info.Server == "" {
		return SRSInfo{}, errors.New("no device_id or server: nothing identifies the box")
	}
	return info, nil
}

func looseString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clean(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", errors.New("not a string")
}

func looseList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var l []json.RawMessage
	if json.Unmarshal(raw, &l) != nil {
		s, err := looseString(raw)
		if err != nil || s == "" {
			return nil, err
		}
		return []string{s}, nil
	}
	if len(l) > 16 {
		return nil, errors.New("more than 16 entries")
	}
	var out []string
	for _, e := range l {
		s, err := looseString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// clean refuses values that would not be safe in an id, a line or a log.
func clean(s string) (string, error) {
	if len(s) > 128 {
		return "", errors.New("longer than 128 characters")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("has a control character")
		}
	}
	return s, nil
}

// srsPort reads a port as SRS lists it: "8080", ":8080", "0.0.0.0:8080"
// or "tcp://1.2.3.4:8080".
func srsPort(s string) (int, bool) {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		s = s[i+1:]
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && n < 65536
}

// srsID makes a node id from the box's device_id (or server id).
func srsID(info SRSInfo) string {
	base := info.DeviceID
	if base == "" {
		base = info.Server
	}
	var b strings.Builder
	b.WriteString("srs-")
	for _, r := range base {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// RegisterSRS records a stock SRS box from its heartbeat body as a line
// that can serve any stream the cluster knows (an SRS edge pulls on
// demand). Its load is unknown: the allocations counted against it are
// its load. It returns the node id.
func (c *Cluster) RegisterSRS(ctx context.Context, body []byte, remoteIP string) (string, error) {
	info, err := ParseSRS(body, remoteIP)
	if err != nil {
		return "", err
	}
	port := 8080
	if len(info.HTTP) > 0 {
		p, ok := srsPort(info.HTTP[0])
		if !ok {
			return "", fmt.Errorf("http: not a port (got %q)", info.HTTP[0])
		}
		port = p
	}
	id := srsID(info)
	line := info.DeviceID
	if line == "" {
		line = info.IP
	}
	n := Node{
		V: WireVersion, ID: id, Kind: KindSRS, Line: line,
		URL:   "http://" + net.JoinHostPort(info.IP, strconv.Itoa(port)),
		Serve: true, State: StateServing, Pulls: true, Streams: []Stream{},
		HeartbeatMs: (srsTTL / 3).Milliseconds(), At: time.Now().UnixMilli(), SRS: &info,
	}
	b, err := json.Marshal(n)
	if err != nil {
		return "", err
	}
	// Any SRS heartbeat for this id refreshes it (a restarted SRS has a
	// new service id but is the same line).
	if err := c.reg.Announce(ctx, id, "srs", b, srsTTL, 0); err != nil {
		return "", err
	}
	return id, nil
}
