package av

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// astiavClassers is go-astiav's registry of the libav objects it wraps
// (class.go: a mutex and a map keyed by the C pointer). It is not
// exported; the test reads it to prove closed filters leave nothing there.
//
//go:linkname astiavClassers github.com/asticode/go-astiav.classers
var astiavClassers *struct {
	m sync.Mutex
	p map[unsafe.Pointer]astiav.Classer
}

func classersLen() int {
	astiavClassers.m.Lock()
	defer astiavClassers.m.Unlock()
	return len(astiavClassers.p)
}

func TestClosedFiltersLeaveNoClassers(t *testing.T) {
	in := AudioFormat{Rate: 16000, Channels: 1, Format: astiav.SampleFormatS16}
	before := classersLen()
	// 50 alive at once: their contexts have 100 distinct addresses, so a
	// leftover cannot hide behind a reused one.
	var fs []*Filter
	for range 50 {
		f, err := NewResampler(in, 44100, 1, 1024)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	if n := classersLen(); n < before+150 {
		t.Fatalf("%d entries with 50 filters alive, %d before: the registry is not the one go-astiav fills", n, before)
	}
	for _, f := range fs {
		f.Close()
	}
	if n := classersLen(); n != before {
		t.Fatalf("go-astiav's registry holds %d entries after 50 filters closed, %d before", n, before)
	}
}
