//go:build vaapi

package hwaccel

import "testing"

// TestVAAPIEncode needs a VA-API render node (PODIUM_HW_DEVICE, default
// the first one): go test -tags vaapi ./hwaccel/
func TestVAAPIEncode(t *testing.T) { requireHardwareEncode(t, vaapi{}, testDevice()) }
