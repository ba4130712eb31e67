package flv

import (
	"fmt"
	"sort"
)

// Command is an AMF0 command message (RTMP type 20) as a client reads the
// server's answers: its name, transaction id and the values after them.
// Scalars are float64, bool, string or nil; an object or ECMA array becomes
// a map of its top-level scalar properties (nested containers are
// skipped); anything else is nil.
type Command struct {
	Name string
	TxID float64
	Args []any
}

// ParseCommand reads a command message body, with the bounds of
// ParseMetadata (depth, property count, truncation).
func ParseCommand(body []byte) (Command, error) {
	r := amfReader{buf: body, objects: true}
	var c Command
	name, err := r.string()
	if err != nil {
		return c, fmt.Errorf("flv: command name: %w", err)
	}
	c.Name = name
	if r.pos < len(body) {
		v, _, err := r.value(0)
		if err != nil {
			return c, fmt.Errorf("flv: command %s transaction id: %w", name, err)
		}
		c.TxID, _ = v.(float64)
	}
	for r.pos < len(body) {
		switch body[r.pos] {
		case amfObject, amfECMAArray:
			skip := 1
			if body[r.pos] == amfECMAArray {
				skip = 5
			}
			if err := r.skip(skip); err != nil {
				return c, fmt.Errorf("flv: command %s: %w", name, err)
			}
			m := map[string]any{}
			if err := r.properties(1, func(k string, v any, keep bool) {
				if keep {
					m[k] = v
				}
			}); err != nil {
				return c, fmt.Errorf("flv: command %s: %w", name, err)
			}
			c.Args = append(c.Args, m)
		default:
			v, keep, err := r.value(0)
			if err != nil {
				return c, fmt.Errorf("flv: command %s: %w", name, err)
			}
			if !keep {
				v = nil
			}
			c.Args = append(c.Args, v)
		}
	}
	return c, nil
}

// CommandBody encodes a command: name, transaction id, then args, where a
// map[string]any is written as an AMF0 object (keys sorted) and other
// values as MetadataBody writes them.
func CommandBody(name string, txID float64, args ...any) []byte {
	b := appendAMFString(nil, name)
	b = appendAMFNumber(b, txID)
	for _, a := range args {
		b = appendCommandValue(b, a)
	}
	return b
}

// appendCommandValue writes a map[string]any as an AMF0 object (keys
// sorted, nested maps too), anything else as appendAMFValue does.
func appendCommandValue(b []byte, v any) []byte {
	m, ok := v.(map[string]any)
	if !ok {
		return appendAMFValue(b, v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, amfObject)
	for _, k := range keys {
		b = append(b, byte(len(k)>>8), byte(len(k)))
		b = append(b, k...)
		b = appendCommandValue(b, m[k])
	}
	return append(b, 0, 0, amfObjectEnd)
}
