package ui

import (
	"net/http"
	"runtime"
	"runtime/pprof"

	"github.com/gin-gonic/gin"
)

// pprof serves the runtime profiles heap, allocs and goroutine at GET
// /debug/pprof/NAME (the admin login, as /metrics): what holds the memory
// and which goroutines exist, for `go tool pprof` when /metrics shows
// growth. runtime/pprof directly: net/http/pprof would register itself on
// http.DefaultServeMux.
func (u *UI) pprof(c *gin.Context) {
	name := c.Param("profile")
	p := pprof.Lookup(name)
	if (name != "heap" && name != "allocs" && name != "goroutine") || p == nil {
		c.String(http.StatusNotFound, "no profile %q (heap, allocs, goroutine)\n", name)
		return
	}
	if name == "heap" && c.Query("gc") == "1" {
		runtime.GC() // what is live now, not what the last cycle left
	}
	debug := 0
	if c.Query("debug") == "1" {
		debug = 1
	}
	c.Header("Cache-Control", "no-store")
	if debug == 0 {
		c.Header("Content-Type", "application/octet-stream")
		c.Header("Content-Disposition", `attachment; filename="`+name+`.pb.gz"`)
	} else {
		c.Header("Content-Type", "text/plain; charset=utf-8")
	}
	c.Status(http.StatusOK)
	if err := p.WriteTo(c.Writer, debug); err != nil {
		u.log.Warn("debug profile", "profile", name, "err", err)
	}
}
