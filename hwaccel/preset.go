package hwaccel

import "slices"

// numPresets is the number of x264 presets.
const numPresets = 10

// x264Presets are the preset names a config may use, fastest first. The
// hardware backends map them onto their own scales.
func x264Presets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast",
		"medium", "slow", "slower", "veryslow", "placebo"}
}

// ValidPreset reports whether name is a preset every backend understands
// ("" is: each backend's default).
func ValidPreset(name string) bool {
	return name == "" || slices.Contains(x264Presets(), name)
}

// mapPreset maps an x264 preset name through scale, which has one entry
// per x264 preset in order; def when name is "" or unknown.
func mapPreset(name string, scale [numPresets]string, def string) string {
	if i := slices.Index(x264Presets(), name); i >= 0 {
		return scale[i]
	}
	return def
}
