package adversarial

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testutil"
)

// soakDuration is 20s unless SOAK_DURATION (a Go duration) says otherwise.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", v, err)
		}
		return d
	}
	return 20 * time.Second
}

// TestSoak runs mixed traffic through one in-process Weir for
// SOAK_DURATION (20s by default): keep-alive GETs, chunked POSTs,
// malformed requests, upgrade requests the origin refuses, and clients
// that go away mid-request. Afterwards the goroutine count and the heap
// return to their baseline: nothing leaks per request or per connection.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		switch {
		case r.Header.Get("Upgrade") != "":
			// A plain origin: no WebSocket here.
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		case r.URL.Path == "/slow":
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, n)
	}))
	defer origin.Close()
	w := testutil.StartWeir(t, testutil.OneRoute(origin.Listener.Addr().String(), "", ""), weir.Options{})
	pool := w.Srv.Group("app").Peers[0].Pool()

	var served, rejected, aborted, upgradesRefused atomic.Int64
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, a ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	kinds := []func(hc *http.Client){
		func(hc *http.Client) { // keep-alive GETs
			for i := 0; i < 5; i++ {
				resp, err := hc.Get(w.URL("/ka"))
				if err != nil {
					fail("GET: %v", err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "GET /ka 0" {
					fail("GET: %d %q", resp.StatusCode, body)
					return
				}
				served.Add(1)
			}
		},
		func(*http.Client) { // chunked POST on a raw connection
			c, err := testutil.DialRaw(w.Addr)
			if err != nil {
				fail("dial: %v", err)
				return
			}
			defer c.Close()
			req := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
			resp, err := c.Do([]byte(req), false, 10*time.Second)
			if err != nil || resp.Status != 200 || string(resp.Body) != "POST /up 11" {
				fail("chunked POST: %v %+v", err, resp)
				return
			}
			served.Add(1)
		},
		func(*http.Client) { // malformed: two Content-Length
			c, err := testutil.DialRaw(w.Addr)
			if err != nil {
				fail("dial: %v", err)
				return
			}
			defer c.Close()
			resp, err := c.Do([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), false, 10*time.Second)
			if err != nil || resp.Status != 400 || !resp.Close {
				fail("malformed: %v %+v", err, resp)
				return
			}
			rejected.Add(1)
		},
		func(*http.Client) { // an upgrade the origin refuses, then a normal request
			c, err := testutil.DialRaw(w.Addr)
			if err != nil {
				fail("dial: %v", err)
				return
			}
			defer c.Close()
			resp, err := c.Do([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), false, 10*time.Second)
			if err != nil || resp.Status != 400 {
				fail("refused upgrade: %v %+v", err, resp)
				return
			}
			upgradesRefused.Add(1)
			resp, err = c.Do(testutil.Get("/after-upgrade"), false, 10*time.Second)
			if err != nil || resp.Status != 200 {
				fail("request after a refused upgrade: %v %+v", err, resp)
				return
			}
			served.Add(1)
		},
		func(*http.Client) { // clients that go away: mid-response, mid-head, mid-body
			for _, req := range []string{
				"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
				"GET /half HTTP/1.1\r\nHo",
				"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789",
			} {
				c, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
				if err != nil {
					fail("dial: %v", err)
					return
				}
				_, _ = io.WriteString(c, req)
				c.Close()
				aborted.Add(1)
			}
		},
	}

	runRound := func(workers int, until time.Time, once bool) {
		var wg sync.WaitGroup
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{MaxIdleConnsPerHost: 2}
				defer tr.CloseIdleConnections()
				hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				for i := g; once && i < g+len(kinds) || !once && time.Now().Before(until); i++ {
					kinds[i%len(kinds)](hc)
				}
			}()
		}
		wg.Wait()
	}
	// settle closes what is idle on both sides and waits until Weir has
	// no client connection and the goroutine count stops falling.
	settle := func() int {
		testutil.WaitFor(t, 10*time.Second, "Weir's client connections to close", func() bool {
			return w.Srv.Engine().ActiveConns() == 0
		})
		pool.CloseIdle()
		origin.CloseClientConnections()
		n := runtime.NumGoroutine()
		testutil.Eventually(2*time.Second, func() bool {
			pool.CloseIdle()
			m := runtime.NumGoroutine()
			stable := m == n
			n = m
			return stable
		})
		return n
	}

	runRound(4, time.Time{}, true) // warm-up: every kind once per worker
	g0 := settle()
	h0 := heapInuse()
	start := time.Now()
	runRound(4, start.Add(dur), false)
	elapsed := time.Since(start)
	served0, rejected0 := served.Load(), rejected.Load()

	g1 := settle()
	var h1 uint64
	leak := !testutil.Eventually(10*time.Second, func() bool {
		pool.CloseIdle()
		g1 = runtime.NumGoroutine()
		return g1 <= g0
	})
	h1 = heapInuse()
	t.Logf("soak: %v of mixed traffic: %d requests served, %d malformed rejected, %d upgrades refused, %d clients aborted; goroutines %d -> %d; heap %d KiB -> %d KiB",
		elapsed.Round(time.Millisecond), served0, rejected0, upgradesRefused.Load(), aborted.Load(), g0, g1, h0>>10, h1>>10)
	if len(errs) > 0 {
		t.Fatalf("soak errors:\n%s", strings.Join(errs, "\n"))
	}
	if leak {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines did not return to the baseline %d (now %d):\n%s", g0, g1, buf[:runtime.Stack(buf, true)])
	}
	if h1 > h0+8<<20 {
		t.Fatalf("heap grew from %d KiB to %d KiB over the soak", h0>>10, h1>>10)
	}
	if served0 == 0 || rejected0 == 0 {
		t.Fatalf("the soak did not exercise every kind of traffic")
	}
}
