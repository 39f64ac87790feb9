// Command fwdload is the load generator of the forward-proxy benchmark
// (bench/forward/run.sh). It drives an HTTP proxy (CONNECT or absolute-form
// requests) or a SOCKS5 proxy over 127.0.0.1 for a fixed time and prints
// one RESULT line.
//
//	fwdload -mode tput -via connect -proxy 127.0.0.1:3128 -target 127.0.0.1:18940 -c 8 -d 6s
//	fwdload -mode rate -via socks   -proxy 127.0.0.1:1080 -target 127.0.0.1:18941 -c 32 -d 6s
//	fwdload -mode http -proxy 127.0.0.1:3128 -target 127.0.0.1:19000 -path /small -c 64 -d 6s
//
// Modes:
//
//	tput  -c tunnels, each opened once, read what the target streams for -d;
//	      reports MB/s summed over the tunnels (the target must stream,
//	      like fwdorigin -source)
//	rate  -c workers, each in a loop: connect to the proxy, open a tunnel
//	      (CONNECT or SOCKS5), write 32 bytes, read them back, close;
//	      reports tunnels/s and the latency of the whole cycle (the target
//	      must echo, like fwdorigin -echo)
//	http  -c kept-alive connections to the proxy, each sending
//	      "GET http://TARGET/PATH HTTP/1.1" and reading the response, one
//	      at a time; reports requests/s and latency
//
// Every run stops after -d, or after -n operations in total if -n > 0.
// Every network step has a 5 s deadline.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirproxy/weir/socks5"
)

var (
	mode   = flag.String("mode", "rate", "tput, rate or http")
	via    = flag.String("via", "connect", "tunnel protocol for tput and rate: connect (HTTP CONNECT) or socks (SOCKS5)")
	proxyA = flag.String("proxy", "127.0.0.1:3128", "proxy `address`")
	target = flag.String("target", "127.0.0.1:18941", "destination `host:port` reached through the proxy")
	path   = flag.String("path", "/small", "request path (http mode)")
	conns  = flag.Int("c", 32, "concurrent tunnels, workers or connections")
	dur    = flag.Duration("d", 6*time.Second, "how long to run")
	maxOps = flag.Int64("n", 0, "stop after this many operations in total (0: only -d)")
)

const stepTimeout = 5 * time.Second

var (
	ops, bytesIn, errs atomic.Int64
	errMu              sync.Mutex
	errSeen            = map[string]int{}
)

func noteErr(err error) {
	errs.Add(1)
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i > 0 && strings.Contains(msg, "127.0.0.1:") {
		msg = msg[i+2:] // fold the per-connection address out of the key
	}
	errMu.Lock()
	errSeen[msg]++
	errMu.Unlock()
}

func main() {
	flag.Parse()
	if *via != "connect" && *via != "socks" {
		fmt.Fprintln(os.Stderr, "fwdload: -via must be connect or socks")
		os.Exit(2)
	}
	start := time.Now()
	deadline := start.Add(*dur)
	lat := make([][]time.Duration, *conns)
	var wg sync.WaitGroup
	var tputStart, tputEnd atomic.Int64
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch *mode {
			case "tput":
				tput(deadline, &tputStart, &tputEnd)
			case "rate":
				lat[i] = rate(deadline)
			case "http":
				lat[i] = httpLoop(deadline)
			default:
				fmt.Fprintln(os.Stderr, "fwdload: unknown -mode", *mode)
				os.Exit(2)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) string {
		if len(all) == 0 {
			return ""
		}
		return fmt.Sprintf("%.3f", float64(all[int(p*float64(len(all)-1))])/1e6)
	}
	mbps := 0.0
	if *mode == "tput" {
		// bytes over the time between the first tunnel's opening and the
		// last one's end, so that setup time does not count
		if s, e := tputStart.Load(), tputEnd.Load(); e > s {
			mbps = float64(bytesIn.Load()) / (float64(e-s) / 1e9) / 1e6
		}
	}
	errMu.Lock()
	for m, n := range errSeen {
		fmt.Fprintf(os.Stderr, "error x%d: %s\n", n, m)
	}
	errMu.Unlock()
	fmt.Printf("RESULT mode=%s via=%s ops=%d errors=%d secs=%.3f rate=%.1f bytes=%d mbps=%.1f p50_ms=%s p99_ms=%s\n",
		*mode, *via, ops.Load(), errs.Load(), secs, float64(ops.Load())/secs, bytesIn.Load(), mbps, pct(0.50), pct(0.99))
}

func more(deadline time.Time) bool {
	return time.Now().Before(deadline) && (*maxOps <= 0 || ops.Load() < *maxOps)
}

// tunnel connects to the proxy and opens a tunnel to the target. The
// returned reader holds anything read past the proxy's answer.
func tunnel() (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", *proxyA, stepTimeout)
	if err != nil {
		return nil, nil, err
	}
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(time.Now().Add(stepTimeout))
	if *via == "socks" {
		if _, err := socks5.ClientHandshake(c, *target, "", ""); err != nil {
			c.Close()
			return nil, nil, err
		}
		return c, bufio.NewReaderSize(c, 64<<10), nil
	}
	if _, err := io.WriteString(c, "CONNECT "+*target+" HTTP/1.1\r\nHost: "+*target+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 64<<10)
	status, err := br.ReadSlice('\n')
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) && !bytes.HasPrefix(status, []byte("HTTP/1.0 200")) {
		c.Close()
		return nil, nil, fmt.Errorf("CONNECT answered %q", bytes.TrimSpace(status))
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return c, br, nil
		}
	}
}

func tput(deadline time.Time, first, last *atomic.Int64) {
	c, br, err := tunnel()
	if err != nil {
		noteErr(err)
		return
	}
	defer c.Close()
	now := time.Now().UnixNano()
	for {
		s := first.Load()
		if (s != 0 && s <= now) || first.CompareAndSwap(s, now) {
			break
		}
	}
	ops.Add(1)
	c.SetDeadline(deadline.Add(stepTimeout))
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		c.SetReadDeadline(time.Now().Add(stepTimeout))
		n, err := br.Read(buf)
		bytesIn.Add(int64(n))
		if err != nil {
			noteErr(err)
			break
		}
	}
	end := time.Now().UnixNano()
	for {
		l := last.Load()
		if end <= l || last.CompareAndSwap(l, end) {
			break
		}
	}
}

func rate(deadline time.Time) []time.Duration {
	lat := make([]time.Duration, 0, 4096)
	msg := []byte("0123456789abcdef0123456789abcdef")
	got := make([]byte, len(msg))
	for more(deadline) {
		t0 := time.Now()
		c, br, err := tunnel()
		if err != nil {
			noteErr(err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		_, err = c.Write(msg)
		if err == nil {
			_, err = io.ReadFull(br, got)
		}
		c.Close()
		if err != nil {
			noteErr(err)
			continue
		}
		if !bytes.Equal(got, msg) {
			noteErr(errors.New("echo mismatch"))
			continue
		}
		ops.Add(1)
		lat = append(lat, time.Since(t0))
	}
	return lat
}

func httpLoop(deadline time.Time) []time.Duration {
	lat := make([]time.Duration, 0, 4096)
	req := []byte("GET http://" + *target + *path + " HTTP/1.1\r\nHost: " + *target + "\r\nUser-Agent: fwdload\r\n\r\n")
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for more(deadline) {
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", *proxyA, stepTimeout); err != nil {
				noteErr(err)
				c = nil
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c.(*net.TCPConn).SetNoDelay(true)
			br = bufio.NewReaderSize(c, 16<<10)
		}
		t0 := time.Now()
		c.SetDeadline(t0.Add(stepTimeout))
		keep, err := exchange(c, br, req)
		if err != nil {
			noteErr(err)
			c.Close()
			c = nil
			continue
		}
		ops.Add(1)
		lat = append(lat, time.Since(t0))
		if !keep {
			c.Close()
			c = nil
		}
	}
	return lat
}

// exchange writes one request and reads the whole response; keep reports
// whether the connection stays open.
func exchange(c net.Conn, br *bufio.Reader, req []byte) (keep bool, err error) {
	if _, err := c.Write(req); err != nil {
		return false, err
	}
	status, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if len(status) < 12 || string(status[9:12]) != "200" {
		return false, fmt.Errorf("response %q", bytes.TrimSpace(status))
	}
	keep = bytes.HasPrefix(status, []byte("HTTP/1.1"))
	clen, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch strings.ToLower(string(k)) {
		case "content-length":
			if clen, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return false, err
			}
		case "transfer-encoding":
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case "connection", "proxy-connection":
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return false, err
			}
			hex, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
			n, err := strconv.ParseInt(string(hex), 16, 64)
			if err != nil {
				return false, err
			}
			if _, err := br.Discard(int(n) + 2); err != nil { // data and CRLF
				return false, err
			}
			if n == 0 {
				return keep, nil // no trailers expected from the origin
			}
		}
	case clen >= 0:
		_, err = br.Discard(int(clen))
		return keep, err
	default:
		_, err = io.Copy(io.Discard, br)
		return false, err
	}
}
