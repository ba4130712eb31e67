package rtmp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"testing"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// TestReuseReadBuffers fails when a lal upgrade moves the fields that
// reuseReadBuffers reaches by reflection.
func TestReuseReadBuffers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := lalrtmp.NewServerSession(nil, a)
	if !reuseReadBuffers(s) {
		t.Fatal("lal ServerSession has no *ChunkComposer field chunkComposer any more")
	}
	cc := reflect.ValueOf(s).Elem().FieldByName("chunkComposer").Elem()
	flag := cc.FieldByName("reuseBufferFlag")
	if !flag.IsValid() || flag.Kind() != reflect.Bool || !flag.Bool() {
		t.Fatalf("ChunkComposer.reuseBufferFlag not set: %v", flag)
	}
}

// TestNoPlayWriteQueue: a playing session has no lal write queue (no
// runWriteLoop goroutine); the field noPlayWriteQueue reaches is there.
func TestNoPlayWriteQueue(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if !noPlayWriteQueue(lalrtmp.NewServerSession(nil, a)) {
		t.Fatal("lal ServerSession has no connection.Connection field conn any more")
	}

	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	srv := New(Config{Addr: "127.0.0.1:0", Vhost: func(string) bool { return true }}, hub, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	pub, err := hub.Publish(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "s1"}, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer pub.Close()
	ps := lalrtmp.NewPullSession().WithOnReadRtmpAvMsg(func(base.RtmpMsg) {})
	require.NoError(t, ps.Pull(fmt.Sprintf("rtmp://%s/live/s1", srv.Addr())))
	defer func() { _ = ps.Dispose() }()
	playerNoDelay(t, srv) // waits until the session plays
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	require.NotContains(t, stacks, "runWriteLoop", "a player's lal connection still has its write queue")
}
