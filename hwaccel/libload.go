package hwaccel

//#cgo LDFLAGS: -ldl
//#include <dlfcn.h>
//#include <stdlib.h>
//
//static const char *podium_try_dlopen(const char *name) {
//	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
//	if (h == NULL) {
//		const char *e = dlerror();
//		return e != NULL ? e : "unknown dlopen error";
//	}
//	dlclose(h);
//	return NULL;
//}
import "C"

import (
	"errors"
	"unsafe"
)

// errLibMissing marks a library that the dynamic loader cannot find.
var errLibMissing = errors.New("not found")

// loadLibrary checks that the dynamic loader can load name (as FFmpeg
// will, with dlopen), then unloads it. A library that is absent gives
// errLibMissing; one that is present but does not load gives dlerror's
// text.
func loadLibrary(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	msg := C.podium_try_dlopen(cname)
	if msg == nil {
		return nil
	}
	return dlopenError(C.GoString(msg))
}
