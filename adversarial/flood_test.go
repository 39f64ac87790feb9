package adversarial

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testutil"
)

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// normalClient issues GETs, each on a new connection, until stop is
// closed, and reports the slowest and any failure.
func normalClient(addr string, stop <-chan struct{}) (slowest time.Duration, count int, err error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return slowest, count, nil
		case <-tick.C:
		}
		start := time.Now()
		c, derr := testutil.DialRaw(addr)
		if derr != nil {
			return slowest, count, derr
		}
		resp, rerr := c.Do(testutil.Get("/normal"), false, 5*time.Second)
		c.Close()
		d := time.Since(start)
		if rerr != nil || resp.Status != 200 {
			return slowest, count, fmt.Errorf("normal request: %v %+v after %v", rerr, resp, d)
		}
		slowest = max(slowest, d)
		count++
	}
}

// TestSlowloris: 500 connections each send a request head one byte at a
// time (a byte every 200ms). A normal client is served within 1s
// meanwhile, and every slow connection is answered 408 and closed
// header_read_timeout (2s here) after its first byte, plus slack.
func TestSlowloris(t *testing.T) {
	const n = 500
	const headerTimeout = 2 * time.Second
	rec := testutil.NewRecorder(t, nil)
	w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, "", "limits:\n  header_read_timeout: 2s\n"), weir.Options{})
	heap0 := heapInuse()

	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		conns[i] = c
		defer c.Close()
	}
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 4000))
	firstByte := make([]time.Time, n)
	closedAfter := make([]time.Duration, n)
	got408 := make([]bool, n)
	var closed atomic.Int64
	var wg sync.WaitGroup
	// The pacer: every 200ms one more byte on each connection still open.
	stopPacer := make(chan struct{})
	pacerDone := make(chan struct{})
	var firstMu sync.Mutex
	go func() {
		defer close(pacerDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for pos := 0; pos < len(head); pos++ {
			for i, c := range conns {
				// The time is taken before the write: a lower bound of when
				// Weir can have seen the byte, whatever the scheduling.
				before := time.Now()
				_ = c.SetWriteDeadline(before.Add(100 * time.Millisecond))
				if _, err := c.Write(head[pos : pos+1]); err == nil && pos == 0 {
					firstMu.Lock()
					firstByte[i] = before
					firstMu.Unlock()
				}
			}
			select {
			case <-stopPacer:
				return
			case <-tick.C:
			}
		}
	}()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			line, _ := br.ReadString('\n')
			got408[i] = strings.HasPrefix(line, "HTTP/1.1 408 ")
			for {
				if _, err := br.ReadByte(); err != nil {
					break
				}
			}
			firstMu.Lock()
			closedAfter[i] = time.Since(firstByte[i])
			firstMu.Unlock()
			closed.Add(1)
		}()
	}

	// A normal client meanwhile, for most of the slow connections' life.
	stopNormal := make(chan struct{})
	type result struct {
		slowest time.Duration
		count   int
		err     error
	}
	normal := make(chan result, 1)
	go func() {
		s, c, err := normalClient(w.Addr, stopNormal)
		normal <- result{s, c, err}
	}()
	<-time.After(headerTimeout * 3 / 4) // let the flood run; pacing, not synchronisation
	close(stopNormal)
	res := <-normal
	heapPeak := heapInuse()

	wg.Wait()
	close(stopPacer)
	<-pacerDone
	// The close is measured where the test sees it, so the upper bound
	// allows for scheduling: 1000 goroutines under the race detector on a
	// small machine, while other packages' tests run too. Unloaded, the
	// worst is within 100ms of the timeout.
	const slack = 3 * time.Second
	var worst time.Duration
	late, no408 := 0, 0
	for i := range closedAfter {
		worst = max(worst, closedAfter[i])
		if closedAfter[i] > headerTimeout+slack || closedAfter[i] < headerTimeout-100*time.Millisecond {
			late++
		}
		if !got408[i] {
			no408++
		}
	}
	t.Logf("slowloris: %d slow connections; normal client: %d requests, slowest %v; slow connections closed after at most %v (header_read_timeout %v); heap %d KiB -> %d KiB",
		n, res.count, res.slowest, worst, headerTimeout, heap0>>10, heapPeak>>10)
	if res.err != nil {
		t.Fatalf("normal client failed during the flood: %v", res.err)
	}
	if res.count == 0 || res.slowest > time.Second {
		t.Fatalf("normal client: %d requests, slowest %v; want each within 1s", res.count, res.slowest)
	}
	if late > 0 {
		t.Fatalf("%d slow connections were not closed between %v and %v after their first byte (worst %v)",
			late, headerTimeout-100*time.Millisecond, headerTimeout+slack, worst)
	}
	if no408 > 0 {
		t.Fatalf("%d slow connections were closed without a 408", no408)
	}
	if heapPeak > heap0+64<<20 {
		t.Fatalf("heap grew from %d to %d KiB under the flood", heap0>>10, heapPeak>>10)
	}
	if rec.Count() != res.count {
		t.Fatalf("the origin saw %d requests, the normal client sent %d: a slow head got through", rec.Count(), res.count)
	}
	testutil.WaitFor(t, 5*time.Second, "Weir to drop every slow connection", func() bool {
		return w.Srv.Engine().ActiveConns() == 0
	})
}

// TestSlowPost: a client that stops sending its body is answered 408 and
// closed body_read_timeout after its last byte; one that trickles a byte
// at a time is cut off by the upstream's timeouts.request. The origin
// never sees a complete request from either, the peer is not blamed (no
// passive ejection), and a normal client is served meanwhile.
func TestSlowPost(t *testing.T) {
	rec := testutil.NewRecorder(t, nil)
	// Passive health ejects the peer at its first failure: a slow client
	// must never count as one, or slow clients could take peers out.
	w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr,
		"    timeouts: {request: 1500ms}\n    passive_health: {max_fails: 1, eject_for: 1m}\n",
		"limits:\n  body_read_timeout: 600ms\n"), weir.Options{})

	run := func(name string, trickle bool, want time.Duration) {
		t.Run(name, func(t *testing.T) {
			c := testutil.Dial(t, w.Addr)
			start := time.Now()
			if _, err := c.Write([]byte("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if trickle {
				go func() {
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := c.Write([]byte("x")); err != nil {
								return
							}
						}
					}
				}()
			}
			got, closed := testutil.ReadAllUntilClose(c, 10*time.Second)
			d := time.Since(start)
			if !closed || !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
				t.Fatalf("got %q (closed %v) after %v, want a 408 and a close", testutil.Clip(got), closed, d)
			}
			if d < want-100*time.Millisecond || d > want+1500*time.Millisecond {
				t.Fatalf("closed after %v, want about %v", d, want)
			}
			t.Logf("%s: 408 and close after %v", name, d)
			if !w.Srv.Group("app").Peers[0].Available() {
				t.Fatalf("the peer was ejected because a client was slow")
			}
		})
	}
	stopNormal := make(chan struct{})
	normal := make(chan error, 1)
	go func() {
		_, _, err := normalClient(w.Addr, stopNormal)
		normal <- err
	}()
	run("stalled body", false, 600*time.Millisecond)
	run("trickled body", true, 1500*time.Millisecond)
	close(stopNormal)
	if err := <-normal; err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.Requests() {
		if r.Target == "/slow" {
			t.Fatalf("the origin read a complete slow request: %s", r.Summary())
		}
	}
}

// TestSlowReader: a client that never reads a large response is cut off
// write_timeout after Weir's writes block; Weir does not buffer the body
// meanwhile (the heap stays flat), and other clients are served.
func TestSlowReader(t *testing.T) {
	const size = 32 << 20
	big := make([]byte, 0, size+100)
	big = append(big, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"...)
	big = append(big, make([]byte, size)...)
	bigDone := make(chan struct{})
	rec := testutil.NewRecorder(t, func(i int, r *testutil.SimpleRequest) testutil.Action {
		if r.Target == "/big" {
			return testutil.Action{Write: big, Then: func() { close(bigDone) }}
		}
		return testutil.OK(i, r)
	})
	w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, "", "limits:\n  write_timeout: 500ms\n"), weir.Options{})
	heap0 := heapInuse()

	c := testutil.Dial(t, w.Addr)
	start := time.Now()
	if _, err := c.Write(testutil.Get("/big")); err != nil {
		t.Fatal(err)
	}
	stopNormal := make(chan struct{})
	normal := make(chan error, 1)
	go func() {
		_, _, err := normalClient(w.Addr, stopNormal)
		normal <- err
	}()
	var heapPeak uint64
	testutil.WaitFor(t, 10*time.Second, "Weir to close the connection of the client that does not read", func() bool {
		heapPeak = max(heapPeak, heapInuse())
		select {
		case <-bigDone: // the origin's write failed: Weir closed both sides
			return true
		default:
			return false
		}
	})
	d := time.Since(start)
	close(stopNormal)
	if err := <-normal; err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Second, "Weir to have no client connection left", func() bool {
		return w.Srv.Engine().ActiveConns() == 0
	})
	// Now read: what was in flight, then the close.
	got, closed := testutil.ReadAllUntilClose(c, 10*time.Second)
	t.Logf("slow reader: cut off after %v (write_timeout 500ms) having been sent %d of %d bytes; heap %d KiB -> %d KiB",
		d, len(got), size, heap0>>10, heapPeak>>10)
	if !closed || len(got) >= size {
		t.Fatalf("slow reader: closed %v, %d bytes", closed, len(got))
	}
	if d > 5*time.Second {
		t.Fatalf("slow reader cut off after %v, want about write_timeout", d)
	}
	if heapPeak > heap0+8<<20 {
		t.Fatalf("heap grew from %d to %d KiB while a client did not read", heap0>>10, heapPeak>>10)
	}
}

// weirConfigFile writes a configuration for the weir binary listening on
// addr with one route to peer, and returns its path.
func weirConfigFile(t *testing.T, addr, peer, extra string) string {
	t.Helper()
	text := "listeners:\n  - address: \"" + addr + "\"\n" + testutil.OneRoute(peer, "", "") +
		"log:\n  access: \"off\"\n" + extra
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// weirProc is the weir binary running as a child process.
type weirProc struct{ *testutil.Process }

// startWeirProc runs the weir binary with a configuration from
// weirConfigFile; wrapper is what runs before the binary (a limit wrapper).
func startWeirProc(t *testing.T, peer, extra string, wrapper ...string) *weirProc {
	t.Helper()
	return &weirProc{testutil.StartProcess(t, func(addr string) []string {
		return append(append([]string{}, wrapper...), weirBin, "run", "-c", weirConfigFile(t, addr, peer, extra))
	})}
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return -1
}

// TestConnectionFloodAtFDLimit: the weir binary runs with 256 file
// descriptors. A flood of connections exhausts them (accept fails with
// EMFILE and Weir backs off instead of exiting or spinning); once the
// flood closes, a normal client is served, memory stayed bounded, and
// SIGTERM still drains cleanly.
func TestConnectionFloodAtFDLimit(t *testing.T) {
	wrapper := []string{"prlimit", "--nofile=256:256"}
	if _, err := exec.LookPath("prlimit"); err != nil {
		wrapper = []string{"sh", "-c", `ulimit -n 256 && exec "$0" "$@"`}
	}
	rec := testutil.NewRecorder(t, nil)
	p := startWeirProc(t, rec.Addr, "shutdown_grace: 5s\n", wrapper...)
	pid := p.Cmd.Process.Pid
	rss0 := rssKiB(pid)

	const maxFlood = 1000
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for len(flood) < maxFlood {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			break
		}
		flood = append(flood, c)
	}
	testutil.WaitFor(t, 10*time.Second, "weir to run out of file descriptors (accept failed)", func() bool {
		return strings.Contains(p.Stderr.String(), "accept failed")
	})
	select {
	case <-p.Done:
		t.Fatalf("weir exited under the flood: %v", p.Err)
	default:
	}
	rssFlood := rssKiB(pid)
	for _, c := range flood {
		c.Close()
	}
	n := len(flood)
	flood = nil

	// Once the flood is gone, a normal client is served (Weir's accept
	// loop backs off for at most 1s between attempts).
	start := time.Now()
	var last error
	served := testutil.Eventually(10*time.Second, func() bool {
		c, err := testutil.DialRaw(p.Addr)
		if err != nil {
			last = err
			return false
		}
		defer c.Close()
		resp, err := c.Do(testutil.Get("/after-flood"), false, 3*time.Second)
		if err != nil || resp.Status != 200 {
			last = fmt.Errorf("%v %+v", err, resp)
			return false
		}
		return true
	})
	if !served {
		t.Fatalf("no normal request served within 10s after the flood closed: %v", last)
	}
	t.Logf("fd flood: %d connections opened against a 256-descriptor weir; normal client served %v after the flood closed; VmRSS %d KiB idle, %d KiB flooded",
		n, time.Since(start), rss0, rssFlood)
	if rssFlood > 0 && rssFlood > rss0+64<<10 {
		t.Fatalf("VmRSS grew from %d to %d KiB under the flood", rss0, rssFlood)
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
		if p.Err != nil {
			t.Fatalf("weir exited with %v after SIGTERM, want 0", p.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("weir did not exit within 10s of SIGTERM")
	}
}
