package configs

import (
	"fmt"
	"reflect"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Changed lists the keys whose effective values differ between old and
// new, in the spelling of the config file: "listen.rtmp",
// "vhosts[transcode].hls.fragment" (a vhost by its name, so that a
// reordered list changes nothing), "vhosts[NAME]" for a vhost added or
// removed, "sources" for any change to the pull list. A reload tells the
// operator, from this, what it did not apply.
func Changed(old, new *Config) []string {
	var out []string
	a, b := plain(old), plain(new)
	for _, k := range keys(a, b) {
		if k == "vhosts" {
			out = append(out, changedVhosts(old.Vhosts, new.Vhosts)...)
			continue
		}
		out = diffValue(out, k, a[k], b[k]) // a list (sources) is one value
	}
	sort.Strings(out)
	return out
}

func changedVhosts(old, new []Vhost) []string {
	var out []string
	byName := func(vs []Vhost) map[string]map[string]any {
		m := make(map[string]map[string]any, len(vs))
		for _, v := range vs {
			m[v.Name] = plain(v)
		}
		return m
	}
	a, b := byName(old), byName(new)
	for _, name := range keys(a, b) {
		x, inOld := a[name]
		y, inNew := b[name]
		key := fmt.Sprintf("vhosts[%s]", name)
		if !inOld || !inNew {
			out = append(out, key)
			continue
		}
		out = diffValue(out, key, x, y)
	}
	return out
}

// diffValue appends the leaf keys under key where a and b differ; a list
// is one value.
func diffValue(out []string, key string, a, b any) []string {
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if !okA || !okB {
		if !reflect.DeepEqual(a, b) {
			out = append(out, key)
		}
		return out
	}
	for _, k := range keys(ma, mb) {
		out = diffValue(out, key+"."+k, ma[k], mb[k])
	}
	return out
}

// plain is v as the config file spells it: YAML keys, YAML values.
func plain(v any) map[string]any {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("config yaml: %v", err)) // plain structs always encode
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("config yaml: %v", err))
	}
	return m
}

// keys is the sorted union of the keys of a and b.
func keys[V any](a, b map[string]V) []string {
	out := make([]string, 0, len(a)+len(b))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
