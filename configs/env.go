package configs

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "PODIUM_"

// envReserved are PODIUM_* variables that are not config keys.
func envReserved(name string) bool {
	return name == "PODIUM_CONFIG"
}

// envOverride is one PODIUM_* variable resolved against the key tree.
type envOverride struct {
	name  string // PODIUM_VHOSTS_0_HLS_ENABLED
	value string
	path  []any // "vhosts", 0, "hls", "enabled": strings are keys, ints list indexes
	leaf  reflect.Type
}

// key prints the override's path as vhosts[0].hls.enabled.
func (o envOverride) key() string {
	var b strings.Builder
	for _, p := range o.path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// applyEnv sets every PODIUM_* variable of env into raw. Names resolve
// greedily against Config's key tree, so PODIUM_DATA_DIR is data_dir and
// PODIUM_VHOSTS_0_TRANSCODE_AUDIO_SAMPLE_RATE is
// vhosts[0].transcode.audio.sample_rate. An index equal to the list's
// length appends an item. Lists of strings take comma-separated values.
func applyEnv(raw map[string]any, env []string) error {
	var ovs []envOverride
	var errs []error
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envReserved(name) {
			continue
		}
		tokens := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "_")
		path, leaf, ok := resolveEnv(reflect.TypeFor[Config](), tokens)
		if !ok {
			errs = append(errs, &ValidationError{Key: name, Msg: "environment variable names no config key"})
			continue
		}
		ovs = append(ovs, envOverride{name: name, value: value, path: path, leaf: leaf})
	}
	// Shorter paths and lower indexes first: a whole list before its items,
	// item 2 before item 10.
	sort.SliceStable(ovs, func(i, j int) bool { return pathLess(ovs[i].path, ovs[j].path) })
	for _, o := range ovs {
		if err := setEnv(raw, o); err != nil {
			errs = append(errs, &ValidationError{Key: o.key(), Msg: fmt.Sprintf("%s=%q: %v", o.name, o.value, err)})
		}
	}
	return errors.Join(errs...)
}

func pathLess(a, b []any) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ai, aInt := a[i].(int)
		bi, bInt := b[i].(int)
		switch {
		case aInt && bInt && ai != bi:
			return ai < bi
		case !aInt && !bInt && a[i] != b[i]:
			return a[i].(string) < b[i].(string)
		}
	}
	return len(a) < len(b)
}

// resolveEnv matches tokens against the key tree of t. At a struct it
// tries the longest run of tokens that names a field first; at a list the
// next token must be an index. It returns the path and the leaf's type.
func resolveEnv(t reflect.Type, tokens []string) ([]any, reflect.Type, bool) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(tokens) == 0 {
		if isLeaf(t) {
			return nil, t, true
		}
		return nil, nil, false
	}
	switch {
	case t.Kind() == reflect.Slice:
		i, err := strconv.Atoi(tokens[0])
		if err != nil || i < 0 || strconv.Itoa(i) != tokens[0] {
			return nil, nil, false
		}
		rest, leaf, ok := resolveEnv(t.Elem(), tokens[1:])
		if !ok {
			return nil, nil, false
		}
		return append([]any{i}, rest...), leaf, true
	case t.Kind() == reflect.Struct && !isLeaf(t):
		for n := len(tokens); n >= 1; n-- {
			key := strings.Join(tokens[:n], "_")
			f, ok := fieldByKey(t, key)
			if !ok {
				continue
			}
			if rest, leaf, ok := resolveEnv(f.Type, tokens[n:]); ok {
				return append([]any{key}, rest...), leaf, true
			}
		}
	}
	return nil, nil, false
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("mapstructure") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// isLeaf reports whether t takes one environment value: a scalar or a
// list of strings.
func isLeaf(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return true
}

// envValue converts an environment string to what the YAML would hold.
func envValue(s string, t reflect.Type) (any, error) {
	switch {
	case t == reflect.TypeFor[Bitrate]() || t == reflect.TypeFor[Duration]() || t == reflect.TypeFor[ByteSize]():
		return s, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, errors.New("not true or false")
		}
		return b, nil
	case t.Kind() == reflect.Int:
		i, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, errors.New("not a whole number")
		}
		return i, nil
	case t.Kind() == reflect.Slice:
		items := []any{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		return items, nil
	}
	return s, nil
}

// setEnv writes o's value at o.path in raw, creating maps on the way.
func setEnv(raw map[string]any, o envOverride) error {
	val, err := envValue(o.value, o.leaf)
	if err != nil {
		return err
	}
	var cur any = raw
	for i, seg := range o.path {
		last := i == len(o.path)-1
		switch seg := seg.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return errors.New("the config has no mapping here to set a key in")
			}
			if last {
				m[seg] = val
				return nil
			}
			next := m[seg]
			if next == nil {
				if _, isIdx := o.path[i+1].(int); isIdx {
					next = []any{}
				} else {
					next = map[string]any{}
				}
				m[seg] = next
			}
			if l, ok := next.([]any); ok {
				if idx, isIdx := o.path[i+1].(int); isIdx && idx == len(l) {
					m[seg] = append(l, newItem(o, i+1))
				}
				next = m[seg]
			}
			cur = next
		case int:
			l, ok := cur.([]any)
			if !ok {
				return errors.New("the config has no list here")
			}
			if seg >= len(l) {
				return fmt.Errorf("index %d: the list has %d items (an index may add one at the end)", seg, len(l))
			}
			if last {
				l[seg] = val
				return nil
			}
			if l[seg] == nil {
				l[seg] = map[string]any{}
			}
			cur = l[seg]
		}
	}
	return nil
}

// newItem is the empty value appended to a list at o.path[i].
func newItem(o envOverride, i int) any {
	if i == len(o.path)-1 {
		return ""
	}
	return map[string]any{}
}
