package testutil

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Process is a program (normally the weir binary) running as a child of
// the test, listening on Addr.
type Process struct {
	Cmd    *exec.Cmd
	Addr   string
	Stderr SyncBuffer
	Done   chan struct{} // closed when the process exited; Err is set then
	Err    error
}

// StartProcess runs the command argv returns for a free loopback address
// and waits until it listens there. The port is free a moment before the
// start; if something else takes it meanwhile, the program exits and
// another port is tried. The process is killed when the test ends, and its
// stderr printed if the test failed.
func StartProcess(t testing.TB, argv func(addr string) []string) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := &Process{Addr: FreePort(t), Done: make(chan struct{})}
		args := argv(p.Addr)
		p.Cmd = exec.Command(args[0], args[1:]...)
		p.Cmd.Stderr = &p.Stderr
		if err := p.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			p.Err = p.Cmd.Wait()
			close(p.Done)
		}()
		t.Cleanup(func() {
			_ = p.Cmd.Process.Kill()
			<-p.Done
			if t.Failed() {
				t.Logf("%s stderr:\n%s", args[0], Clip([]byte(p.Stderr.String())))
			}
		})
		listening := false
		Eventually(10*time.Second, func() bool {
			select {
			case <-p.Done:
				return true
			default:
			}
			if c, err := net.Dial("tcp", p.Addr); err == nil {
				c.Close()
				listening = true
			}
			return listening
		})
		if listening {
			return p
		}
		if attempt == 3 {
			t.Fatalf("%s did not start (%v):\n%s", strings.Join(args, " "), p.Err, p.Stderr.String())
		}
	}
}
