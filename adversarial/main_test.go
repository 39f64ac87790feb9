// Package adversarial is Weir's adversarial test suite: request smuggling
// and parsing scenarios (testdata/smuggling), broken upstreams
// (testdata/upstream and upstream_test.go), floods and slow clients,
// shutdown under load, an end-to-end fuzz target and a soak test. Every
// test talks to Weir over real loopback sockets. docs/security.md
// summarises what it covers and what Weir guarantees.
package adversarial

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testutil"
)

// weirBin is the weir command, built once, for the tests that need a
// separate process (file descriptor limits, signals).
var weirBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weir-adversarial-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "adversarial:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if weirBin, err = testutil.BuildWeir(dir); err != nil {
		fmt.Fprintln(os.Stderr, "adversarial: building the weir command:", err)
		return 1
	}
	goroutines, fds := countGoroutines(), countFDs()
	code := m.Run()
	if code != 0 {
		return code
	}
	// Leak check: every test must leave behind no goroutine and no file
	// descriptor. Both may take a moment to settle (a connection's
	// goroutine ends after its socket closed).
	if !testutil.Eventually(10*time.Second, func() bool { return countGoroutines() <= goroutines }) {
		fmt.Fprintf(os.Stderr, "adversarial: goroutine leak: %d at the start, %d at the end\n%s\n",
			goroutines, countGoroutines(), allStacks())
		return 1
	}
	if !testutil.Eventually(10*time.Second, func() bool { return countFDs() <= fds }) {
		fmt.Fprintf(os.Stderr, "adversarial: file descriptor leak: %d at the start, %d at the end\n%s",
			fds, countFDs(), listFDs())
		return 1
	}
	return 0
}

// countGoroutines counts goroutines, leaving out the ones the runtime and
// the testing package start for themselves (the signal loop a fuzzing run
// starts, say), which are no test's leak.
func countGoroutines() int {
	n := 0
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, "os/signal.loop") || strings.Contains(g, "runtime.ensureSigM") {
			continue
		}
		n++
	}
	return n
}

func allStacks() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// countFDs counts this process's open file descriptors (-1 where /proc
// is missing, which turns the check off).
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func listFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b bytes.Buffer
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "  fd %s -> %s\n", e.Name(), target)
	}
	return b.String()
}
