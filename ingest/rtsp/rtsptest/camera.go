// Package rtsptest holds test peers for RTSP code: a fake camera that
// answers requests with whatever a test wants (garbage, truncated SDP).
package rtsptest

import (
	"bufio"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeCamera listens on 127.0.0.1 and answers each RTSP request with
// answer(method, cseq); a nil answer closes the connection. It returns
// the address and stops with the test. Connections last at most 5 s.
func FakeCamera(t testing.TB, answer func(method, cseq string) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake camera: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				r := textproto.NewReader(bufio.NewReader(c))
				for {
					line, err := r.ReadLine()
					if err != nil {
						return
					}
					h, err := r.ReadMIMEHeader()
					if err != nil {
						return
					}
					out := answer(strings.Fields(line + " x")[0], h.Get("Cseq"))
					if out == nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
