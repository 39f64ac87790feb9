// Command handshake measures a TLS server's handshake rate: each of -c
// workers repeatedly opens a TCP connection, completes a TLS 1.3
// handshake (ALPN http/1.1), sends one GET with Connection: close, reads
// the whole response and closes. It stops after -d or -n handshakes,
// whichever comes first.
//
// Without -resume every handshake is a full one (no session cache: a
// certificate signature per connection). With -resume the workers share a
// client session cache, so after the first connection handshakes resume
// from the server's session ticket (PSK with X25519, no certificate).
//
// Key exchange is X25519 only, as every server under test supports it.
//
//	handshake -addr 127.0.0.1:8443 -c 32 -d 8s [-resume]
//
// The last line is machine-readable:
//
//	RESULT ok=N errors=E resumed=R secs=S rate=N/S
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server `address`")
	conc := flag.Int("c", 32, "concurrent workers")
	dur := flag.Duration("d", 8*time.Second, "run length")
	max := flag.Int64("n", 2_000_000, "stop after this many handshakes")
	path := flag.String("path", "/small", "request path")
	resume := flag.Bool("resume", false, "resume TLS sessions (shared client session cache)")
	warm := flag.Duration("warmup", time.Second, "unmeasured run before the measured one")
	flag.Parse()

	conf := &tls.Config{
		InsecureSkipVerify: true, // self-signed benchmark certificate
		NextProtos:         []string{"http/1.1"},
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
	if *resume {
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")

	var firstErr atomic.Value
	one := func() (resumed bool, err error) {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			return false, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(c, conf)
		if err := tc.Handshake(); err != nil {
			return false, err
		}
		if _, err := tc.Write(req); err != nil {
			return false, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return false, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return tc.ConnectionState().DidResume, err
	}

	run := func(d time.Duration, limit int64) (ok, errs, res int64, secs float64) {
		var n, nerr, nres atomic.Int64
		stop := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		for range *conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) && n.Load() < limit {
					r, err := one()
					if err != nil {
						nerr.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						time.Sleep(time.Millisecond)
						continue
					}
					n.Add(1)
					if r {
						nres.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return n.Load(), nerr.Load(), nres.Load(), time.Since(start).Seconds()
	}

	if *warm > 0 {
		run(*warm, *max)
	}
	ok, errs, res, secs := run(*dur, *max)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "first error: %s\n", e)
	}
	fmt.Printf("RESULT ok=%d errors=%d resumed=%d secs=%.3f rate=%.1f\n", ok, errs, res, secs, float64(ok)/secs)
}
