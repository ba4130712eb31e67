package proc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Six samples as `perf script -F comm,tid,ip,sym` prints them: a Go
// thread blocked in epoll_wait under the scheduler, a send from Go code,
// Go's scheduler in user space, nginx parsing, a thread switched out as a
// send returned, and an allocation.
const script = `podium 31249 
	ffffffff813ae493 finish_task_switch.isra.0
	ffffffff8175547c __x64_sys_epoll_pwait
	ffffffff8224d141 do_syscall_64
	            e76e internal/runtime/syscall/linux.Syscall6
	           4dfd4 runtime.netpoll
	           5af3f runtime.findRunnable

podium 31250 
	ffffffff81000130 tcp_sendmsg_locked
	ffffffff81000130 __x64_sys_sendto
	           12345 github.com/podiumlive/podium/rtmp.RawWrite+0x1c
	           12345 github.com/podiumlive/podium/ingest/stream.(*Reader).push

podium 31249 
	           5af7e runtime.findRunnable
	           5c5d1 runtime.schedule

nginx 4242 
	           faec ngx_rtmp_recv
	           fa00 ngx_epoll_process_events

podium 31250 
	ffffffff813ae493 finish_task_switch.isra.0
	ffffffff813ae493 schedule
	ffffffff813ae493 exit_to_user_mode_loop
	ffffffff8224d141 do_syscall_64
	           e76e internal/runtime/syscall/linux.Syscall6
	           12345 github.com/podiumlive/podium/rtmp.RawWrite

podium 31250 
	           1111 runtime.mallocgc
	           2222 github.com/podiumlive/podium/flv.(*Demuxer).videoFrame
`

func TestParseScript(t *testing.T) {
	b, err := parseScript(strings.NewReader(script))
	require.NoError(t, err)
	require.Equal(t, 6, b.Total)
	require.Equal(t, 1, b.Samples[CatPreempt], "switched out after the syscall returned")
	require.Equal(t, 1, b.Samples[CatWait], "a syscall decides, not the Go frames under it")
	require.Equal(t, 1, b.Samples[CatSend])
	require.Equal(t, 1, b.Samples[CatScheduler])
	require.Equal(t, 1, b.Samples[CatWork])
	require.Equal(t, 1, b.Samples[CatMemory])
	require.Zero(t, b.Samples[CatRecv])
}

func TestSyscallCategory(t *testing.T) {
	for sym, want := range map[string]Category{
		"__x64_sys_recvfrom": CatRecv, "__x64_sys_read": CatRecv, "__x64_sys_writev": CatSend,
		"__x64_sys_futex": CatWait, "__x64_sys_openat": CatSyscall,
	} {
		got, ok := syscallCategory(sym)
		require.True(t, ok, sym)
		require.Equal(t, want, got, sym)
	}
	_, ok := syscallCategory("tcp_sendmsg")
	require.False(t, ok)
}
