package configs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Load reads the YAML file at path ("" = the embedded default), applies
// PODIUM_* environment overrides, fills defaults and validates. Errors
// name the offending key; see Parse.
func Load(path string) (*Config, error) {
	if path == "" {
		c, err := Parse(defaultYAML, os.Environ())
		if err != nil {
			return nil, fmt.Errorf("config (embedded default): %w", err)
		}
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load without the file system: yamlBytes is the config file and
// env the environment (as os.Environ returns it; only PODIUM_* entries are
// used, PODIUM_CONFIG is left to the CLI).
//
// Keys the file leaves out take the embedded default's values; a list
// given in the file (vhosts, sources, any list of strings) replaces the
// default's list whole. Inside a vhost, a section that is present gets the
// defaults of the keys it leaves out. Unknown keys, wrongly typed values
// and every Validate problem are reported as *ValidationError, several
// joined with errors.Join.
func Parse(yamlBytes []byte, env []string) (*Config, error) {
	user, err := readYAML(yamlBytes)
	if err != nil {
		return nil, err
	}
	base, err := readYAML(defaultYAML)
	if err != nil {
		return nil, fmt.Errorf("embedded default: %w", err)
	}
	raw := mergeMaps(base, user)
	if err := applyEnv(raw, env); err != nil {
		return nil, err
	}
	fillSectionDefaults(raw)

	c, err := decode(raw)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readYAML parses a YAML document into viper's lower-cased settings map.
func readYAML(b []byte) (map[string]any, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		var pe viper.ConfigParseError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			err = pe.Unwrap()
		}
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	return v.AllSettings(), nil
}

// mergeMaps returns a deep copy of base with over laid on top: maps merge
// key by key, anything else (lists included) in over replaces base. A nil
// value in over keeps base's.
func mergeMaps(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = deepCopy(v)
	}
	for k, v := range over {
		if v == nil {
			if _, ok := out[k]; ok {
				continue
			}
		}
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = mergeMaps(bm, om)
			continue
		}
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

// sectionDefaults are the values a present vhost section starts from.
func sectionDefaults(dataDir string) map[string]map[string]any {
	return map[string]map[string]any{
		"transcode": {
			"to": "transcode", "suffix": "",
			"audio": map[string]any{"codec": "aac", "bitrate": "64k", "sample_rate": 44100, "channels": 0},
			"video": map[string]any{
				"codec": "copy", "bitrate": "1500k", "width": 0, "height": 0, "fps": 0,
				"gop": "2s", "profile": "", "preset": "",
			},
		},
		"forward": {"destinations": []any{}, "backend": "", "hop_limit": 1},
		"hls": {
			"enabled": true, "fragment": "2s", "window": 6, "path": defaultHLSPath(dataDir),
			"variant": "mpegts", "dispose": "120s",
		},
		"hooks": {
			"on_publish": []any{}, "on_unpublish": []any{}, "on_play": []any{},
			"on_stop": []any{}, "on_hls": []any{}, "on_dvr": []any{},
		},
		"dvr": {
			"enabled": true, "path": defaultDVRPath(dataDir), "plan": DVRPlanSession,
			"duration": "30m", "keep": "0", "min_free": "0",
		},
		"security": {
			"publish_allow": []any{}, "publish_deny": []any{}, "play_allow": []any{},
			"play_deny": []any{}, "publish_key": "",
		},
		"cluster": vhostClusterDefaults(),
	}
}

func sourceDefaults() map[string]any {
	return map[string]any{"url": "", "publish": "", "vhost": DefaultVhost, "transport": "auto", "on_demand": false}
}

// defaultDVRPath is <data_dir>/dvr/[app]/[stream]/[2006]-[01]-[02]_[15][04][05].mp4.
func defaultDVRPath(dataDir string) string {
	return filepath.Join(defaultHLSPath(dataDir), "..", "dvr", "[app]", "[stream]", "[2006]-[01]-[02]_[15][04][05].mp4")
}

// defaultHLSPath is <data_dir>/hls, keeping a relative dir visibly relative.
func defaultHLSPath(dataDir string) string {
	p := filepath.Join(dataDir, "hls")
	if !filepath.IsAbs(p) && !strings.HasPrefix(p, ".") {
		p = "." + string(filepath.Separator) + p
	}
	return p
}

// fillSectionDefaults merges the defaults under every present vhost section
// and every source. Values of the wrong shape are left for decode to report.
func fillSectionDefaults(raw map[string]any) {
	dataDir, _ := raw["data_dir"].(string)
	if dataDir == "" {
		dataDir = "./data"
	}
	if vhosts, ok := raw["vhosts"].([]any); ok {
		for _, item := range vhosts {
			vh, ok := item.(map[string]any)
			if !ok {
				continue
			}
			for name, def := range sectionDefaults(dataDir) {
				if sec, ok := vh[name].(map[string]any); ok {
					vh[name] = mergeMaps(def, sec)
				}
			}
		}
	}
	if sources, ok := raw["sources"].([]any); ok {
		for i, item := range sources {
			if src, ok := item.(map[string]any); ok {
				sources[i] = mergeMaps(sourceDefaults(), src)
			}
		}
	}
	fillClusterDefaults(raw)
}

// decode turns the merged settings map into a Config, reporting unknown
// keys and values of the wrong type as *ValidationError.
func decode(raw map[string]any) (*Config, error) {
	var c Config
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: decodeHook,
		Metadata:   &md,
		Result:     &c,
	})
	if err != nil {
		return nil, fmt.Errorf("new config decoder: %w", err)
	}
	var errs []error
	collectDecodeErrors(dec.Decode(raw), &errs)
	sort.Strings(md.Unused)
	for _, k := range md.Unused {
		errs = append(errs, &ValidationError{Key: k, Msg: "unknown key"})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// collectDecodeErrors flattens mapstructure's joined errors into
// *ValidationError values keyed by mapstructure's field names, which
// already have the vhosts[1].hls.window form.
func collectDecodeErrors(err error, out *[]error) {
	if err == nil {
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) && err == error(de) {
		*out = append(*out, &ValidationError{Key: de.Name(), Msg: decodeMsg(de.Unwrap())})
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collectDecodeErrors(e, out)
		}
		return
	}
	if inner := errors.Unwrap(err); inner != nil {
		collectDecodeErrors(inner, out) // "decoding failed due to ...: %w"
		return
	}
	*out = append(*out, &ValidationError{Key: "config", Msg: err.Error()})
}

func decodeMsg(err error) string {
	var ute *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("expected %s, got %s", kindName(ute.Expected.Type()), valueName(ute.Value))
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("expected %s, got %s", kindName(pe.Expected.Type()), valueName(pe.Value))
	}
	return err.Error()
}

func kindName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Bitrate]():
		return `a bitrate like "64k"`
	case reflect.TypeFor[ByteSize]():
		return `a size like "2GiB"`
	case reflect.TypeFor[Duration]():
		return `a duration like "2s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "a mapping of keys"
	}
	return t.String()
}

func valueName(v any) string {
	switch t := v.(type) {
	case map[string]any, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("%q", t)
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%v", t)
	}
}

// decodeHook converts config scalars: strings to Bitrate and Duration,
// plain numbers to Bitrate (bits per second), and numbers or booleans
// to strings for string fields (publish_key: 1234).
func decodeHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	switch to.Type() {
	case reflect.TypeFor[Bitrate]():
		switch v := data.(type) {
		case string:
			return ParseBitrate(v)
		case int:
			return ParseBitrate(fmt.Sprint(v))
		case int64:
			return ParseBitrate(fmt.Sprint(v))
		case uint64:
			return ParseBitrate(fmt.Sprint(v))
		case float64:
			return ParseBitrate(fmt.Sprint(v))
		}
	case reflect.TypeFor[ByteSize]():
		switch v := data.(type) {
		case string:
			return ParseByteSize(v)
		case int, int64, uint64, float64:
			return ParseByteSize(fmt.Sprint(v))
		}
	case reflect.TypeFor[Duration]():
		switch v := data.(type) {
		case string:
			return ParseDuration(v)
		case int, int64, uint64, float64:
			if fmt.Sprint(v) == "0" {
				return Duration(0), nil
			}
			return nil, fmt.Errorf("%w: a number needs a unit (got %v)", ErrDuration, v)
		}
	}
	switch to.Kind() {
	case reflect.Struct:
		if _, ok := data.(map[string]any); !ok {
			return nil, fmt.Errorf("expected a mapping of keys, got %s", valueName(data))
		}
	case reflect.Slice:
		if _, ok := data.([]any); !ok {
			return nil, fmt.Errorf("expected a list, got %s", valueName(data))
		}
	}
	if to.Kind() == reflect.String {
		switch data.(type) {
		case int, int64, uint64, float64, bool:
			return fmt.Sprint(data), nil
		}
	}
	return data, nil
}
