//go:build qsv

package hwaccel

import "testing"

// TestQSVEncode needs an Intel GPU with the media driver: go test -tags qsv ./hwaccel/
func TestQSVEncode(t *testing.T) { requireHardwareEncode(t, qsv{}, "") }
