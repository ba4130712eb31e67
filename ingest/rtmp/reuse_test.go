package rtmp

import (
	"net"
	"reflect"
	"testing"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
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
