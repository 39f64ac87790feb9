package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/upstream"
)

// testProxy starts an engine on loopback that sends every request to the
// given origin addresses, round robin.
func testProxy(tb testing.TB, h *Handler, origins ...string) (addr string, g *upstream.Group) {
	tb.Helper()
	peers := make([]*upstream.Peer, len(origins))
	for i, o := range origins {
		peers[i] = upstream.NewPeer(o, 1, i, upstream.PoolOptions{})
	}
	bal, err := upstream.NewBalancer("round_robin", peers)
	if err != nil {
		tb.Fatal(err)
	}
	g = &upstream.Group{Name: "test", Peers: peers, Balancer: bal, Retries: 2,
		Timeouts: upstream.Timeouts{Connect: time.Second, ResponseHeader: 5 * time.Second, Idle: 5 * time.Second}}
	if h == nil {
		h = &Handler{}
	}
	r := &Route{Name: "all", Upstream: g}
	h.Router = RouterFunc(func(*Session) *Route { return r })
	if h.ErrorLog == nil {
		h.ErrorLog = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := NewServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.ServeListener(ln, engineOptions(nil))
	tb.Cleanup(func() {
		srv.Shutdown(tb.Context())
		g.Close()
	})
	return ln.Addr().String(), g
}

// engineOptions returns lo (nil: empty options) with the engine the
// tests run on: the goroutine engine, or the event loops when
// WEIR_TEST_ENGINE=loop (scripts/test.sh runs this package both ways).
func engineOptions(lo *ListenerOptions) *ListenerOptions {
	if lo == nil {
		lo = &ListenerOptions{}
	}
	if os.Getenv("WEIR_TEST_ENGINE") == "loop" {
		o := *lo
		o.EventLoop = true
		return &o
	}
	return lo
}

func TestProxySimpleGet(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-XFF", r.Header.Get("X-Forwarded-For"))
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	defer origin.Close()
	addr, _ := testProxy(t, nil, origin.Listener.Addr().String())
	resp, err := http.Get("http://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello /x" || resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Host"); got != addr {
		t.Errorf("origin saw Host %q, want %q", got, addr)
	}
	if got := resp.Header.Get("X-XFF"); got != "127.0.0.1" {
		t.Errorf("origin saw X-Forwarded-For %q", got)
	}
}

// BenchmarkProxyKeepAlive measures one keep-alive request through the
// engine: client → Weir → origin and back, over loopback TCP. Its allocs/op
// is the engine's steady-state allocation count per request.
func BenchmarkProxyKeepAlive(b *testing.B) {
	origin := testkit.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n"))
	addr, _ := testProxy(b, &Handler{Limits: Limits{MaxRequestsPerConn: 1 << 30}}, origin)
	benchKeepAlive(b, addr)
}

// benchKeepAlive measures keep-alive round trips of a small GET through
// the proxy at addr, whose origin answers 12 body bytes.
func benchKeepAlive(b *testing.B, addr string) {
	k := testkit.DialKeepAlive(b, addr, []byte("GET /bench HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"), 12)
	benchRounds(b, func() { k.RoundTrip() })
}

// benchRounds runs one round 100 times to warm up, then b.N times
// measured, with allocations reported.
func benchRounds(b *testing.B, round func()) {
	for range 100 {
		round()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		round()
	}
}

func TestBadRequestCloses(t *testing.T) {
	origin := testkit.Fixed(t, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	addr, _ := testProxy(t, nil, origin)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(all), "HTTP/1.1 400 ") || !strings.Contains(string(all), "Connection: close") {
		t.Fatalf("got %q", all)
	}
}

// TestClientAbortDoesNotEjectPeer: clients that drop large downloads (the
// spliced path) must not count as failures of the peer. Before the fix,
// three aborted downloads ejected the only peer and everyone got 503.
func TestClientAbortDoesNotEjectPeer(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 4<<20)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4194304")
		_, _ = w.Write(body)
	}))
	defer origin.Close()
	addr, g := testProxy(t, nil, origin.Listener.Addr().String())
	g.PassiveMaxFails, g.PassiveEjectFor = 3, time.Minute
	for range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
		// Read part of the head and body, then reset the connection.
		buf := make([]byte, 1024)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// Let the engine notice every abort: it finishes with the connections
	// once their writes fail.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range g.Peers {
		for p.Inflight() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling a counter, not ordering goroutines
		}
	}
	if !g.Peers[0].Available() {
		t.Fatal("the peer was ejected because clients aborted downloads")
	}
	resp, err := http.Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != int64(len(body)) {
		t.Fatalf("after aborted downloads: status %d, %d bytes", resp.StatusCode, n)
	}
}

// TestBodiesAroundSpliceThreshold: request and response bodies whose
// remainder is just below, at and above spliceMin arrive whole, and a
// request pipelined right behind a spliced upload is answered on the same
// connection (the kernel copy must stop at the body's last byte).
func TestBodiesAroundSpliceThreshold(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		sum := sha256.Sum256(b)
		// Echo the body back, so the response side crosses the
		// threshold too, with its digest in a header.
		w.Header().Set("X-Sum", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}))
	defer origin.Close()
	addr, _ := testProxy(t, nil, origin.Listener.Addr().String())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, size := range []int{spliceMin - 1, spliceMin, spliceMin + 1, 2*connBufSize + 7, 64 << 10, 1<<20 + 3} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i*7 + size)
		}
		sum := sha256.Sum256(body)
		// The upload and a pipelined GET go out in one write.
		msg := fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		msg += string(body) + "GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
		go func() { _, _ = io.WriteString(c, msg) }()
		for i, want := range []string{hex.EncodeToString(sum[:]), hex.EncodeToString(sha256.New().Sum(nil))} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("size %d, response %d: %v", size, i, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("size %d, response %d body: %v", size, i, err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Sum") != want {
				t.Fatalf("size %d, response %d: status %d, origin saw digest %s, want %s", size, i, resp.StatusCode, resp.Header.Get("X-Sum"), want)
			}
			if i == 0 && !bytes.Equal(got, body) {
				t.Fatalf("size %d: echoed body differs (%d bytes back)", size, len(got))
			}
		}
	}
}

// TestMaxConns: at ListenerOptions.MaxConns, a further connection waits
// (in the backlog) until one closes, and the goroutine engine's
// connections keep their *net.TCPConn, so splice and the buffer-free idle
// wait still apply (netutil.LimitListener's wrapper hid both).
func TestMaxConns(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	g := group(t, upstream.ProtoHTTP1, origin.Listener.Addr().String())
	lo := engineOptions(&ListenerOptions{MaxConns: 2})
	addr, srv := startFront(t, lo, g)
	get := func(c net.Conn, br *bufio.Reader, wait time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns, readers = append(conns, c), append(readers, bufio.NewReader(c))
		if i < 2 {
			if err := get(c, readers[i], 5*time.Second); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
	}
	// The third waits: a bounded check that no answer comes meanwhile.
	if err := get(conns[2], readers[2], 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("third connection at MaxConns 2: %v, want no answer yet", err)
	}
	srv.mu.Lock()
	for c := range srv.conns {
		if _, ok := c.nc.(*net.TCPConn); !lo.EventLoop && (!ok || c.raw == nil) {
			t.Errorf("served connection is %T (raw idle wait: %v), want *net.TCPConn with it", c.nc, c.raw != nil)
		}
	}
	srv.mu.Unlock()
	conns[0].Close()
	_ = conns[2].SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(readers[2], nil)
	if err != nil {
		t.Fatalf("third connection once the first closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("third connection: %d", resp.StatusCode)
	}
}
