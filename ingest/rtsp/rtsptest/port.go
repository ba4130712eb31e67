package rtsptest

import (
	"fmt"
	"net"
	"testing"
)

// Port is a free 127.0.0.1 TCP port whose UDP pair (the even port of its
// number and the next; see the RTSP server's udp_rtp/udp_rtcp) is free
// too, so that a server bound on it offers RTP over UDP.
func Port(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		ok := true
		for _, u := range []int{p &^ 1, p&^1 + 1} {
			pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", u))
			if err != nil {
				ok = false
				break
			}
			_ = pc.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free rtsp port")
	return 0
}
