//go:build nvidia

package hwaccel

import "testing"

// TestNVENCEncode needs an NVENC-capable GPU: go test -tags nvidia ./hwaccel/
// (H100/H200 have none: there the probe reason is the expected outcome).
func TestNVENCEncode(t *testing.T) { requireHardwareEncode(t, nvenc{}, "") }
