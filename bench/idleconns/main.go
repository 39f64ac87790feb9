// Command idleconns measures what idle keep-alive client connections cost
// a server in memory. It opens N connections to an address; each sends one
// request and reads the whole response, then stays open and idle. It reads
// the target's resident set size (VmRSS in /proc/PID/status) before and
// after, and reports the growth per connection.
//
//	idleconns -addr 127.0.0.1:8080 -pid 1234 -n 10000
//
// The tool raises its own RLIMIT_NOFILE; the server needs enough file
// descriptors too (ulimit -n before starting it). When more connections
// are asked for than one source address has ephemeral ports, it spreads
// them over 127.0.0.1, 127.0.0.2, ... (the whole 127/8 is loopback on Linux).
//
// Several PIDs may be given, comma-separated (a master and its worker):
// their RSS is summed. The last line of output is machine-readable:
//
//	RESULT conns=10000 rss_before_kib=... rss_after_kib=... per_conn_bytes=...
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server `address` (host:port)")
	n := flag.Int("n", 10000, "number of idle connections to open")
	pids := flag.String("pid", "", "`PID`s of the server (comma-separated; RSS is summed); required")
	path := flag.String("path", "/small", "request `path` sent on each connection")
	host := flag.String("host", "bench.local", "Host header")
	srcs := flag.Int("sources", 0, "source addresses to spread over (127.0.0.1..127.0.0.N); 0: one per 20000 connections")
	par := flag.Int("parallel", 200, "connections being set up at once")
	settle := flag.Duration("settle", 3*time.Second, "wait before each RSS reading")
	hold := flag.Duration("hold", 0, "keep the connections open this long after measuring")
	timeout := flag.Duration("timeout", 10*time.Second, "timeout for one connection's setup")
	flag.Parse()
	if *pids == "" {
		fmt.Fprintln(os.Stderr, "idleconns: -pid is required")
		os.Exit(2)
	}
	pidList := strings.Split(*pids, ",")

	if got, err := raiseNoFile(uint64(*n) + 256); err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: raising RLIMIT_NOFILE: %v (have %d)\n", err, got)
	} else if got < uint64(*n)+64 {
		fmt.Fprintf(os.Stderr, "idleconns: RLIMIT_NOFILE is %d, too low for %d connections; lowering -n\n", got, *n)
		*n = int(got) - 64
	}
	if *srcs <= 0 {
		// Leave headroom below the default ephemeral range (~28k ports).
		*srcs = (*n + 19999) / 20000
	}

	time.Sleep(*settle)
	before, err := rss(pidList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("target %s pid %s: VmRSS before %d KiB\n", *addr, *pids, before)

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: idleconns\r\n\r\n")
	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				var src *net.TCPAddr // nil: the kernel picks the source
				if *srcs > 1 {
					src = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%*srcs))}
				}
				c, err := open(*addr, src, req, *timeout)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	opened := *n - int(failed.Load())
	fmt.Printf("opened %d idle connections in %v (%d failed", opened, time.Since(start).Round(time.Millisecond), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("; first error: %s", e)
	}
	fmt.Println(")")

	time.Sleep(*settle)
	after, err := rss(pidList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: %v\n", err)
		os.Exit(1)
	}
	alive := countAlive(conns)
	per := 0.0
	if opened > 0 {
		per = float64(after-before) * 1024 / float64(opened)
	}
	fmt.Printf("VmRSS after %d KiB (+%d KiB); %d connections still open; %.0f bytes per connection\n",
		after, after-before, alive, per)
	if *hold > 0 {
		time.Sleep(*hold)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	fmt.Printf("RESULT conns=%d alive=%d rss_before_kib=%d rss_after_kib=%d per_conn_bytes=%.0f\n",
		opened, alive, before, after, per)
	if opened == 0 {
		os.Exit(1)
	}
}

// open connects, sends one request and reads its whole response
// (Content-Length framed), leaving the connection idle.
func open(addr string, src *net.TCPAddr, req []byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src != nil {
		d.LocalAddr = src
		// Choose the source port at connect time, unique per 4-tuple, rather
		// than at bind time, unique per address: otherwise ports held by
		// TIME_WAIT sockets to other destinations make bind fail.
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	if err := readResponse(bufio.NewReaderSize(c, 4096)); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func readResponse(r *bufio.Reader) error {
	status, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 2")) {
		return fmt.Errorf("status %q", bytes.TrimSpace(status))
	}
	clen := int64(-1)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			clen, err = strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
			if err != nil {
				return err
			}
		}
	}
	if clen < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = io.CopyN(io.Discard, r, clen)
	return err
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (Linux 4.2+), which the
// syscall package does not name.
const ipBindAddressNoPort = 24

// countAlive checks, without blocking, that the server has not closed the
// connections (a closed one reads EOF at once).
func countAlive(conns []net.Conn) int {
	alive := 0
	var buf [1]byte
	for _, c := range conns {
		if c == nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf[:])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			alive++
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	return alive
}

// rss sums VmRSS (KiB) over the given PIDs.
func rss(pids []string) (int64, error) {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strings.TrimSpace(p) + "/status")
		if err != nil {
			return 0, err
		}
		v, ok := statusField(b, "VmRSS:")
		if !ok {
			return 0, fmt.Errorf("no VmRSS for pid %s", p)
		}
		total += v
	}
	return total, nil
}

func statusField(b []byte, name string) (int64, bool) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseInt(string(f[0]), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to want, or to the hard limit
// when that is lower (only a privileged process may raise the hard one).
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	nl := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err == nil {
		return want, nil
	}
	nl = syscall.Rlimit{Cur: min(want, lim.Max), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		return lim.Cur, err
	}
	return nl.Cur, nil
}
