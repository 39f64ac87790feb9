//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/upstream"
)

// loopFront starts the event-loop engine in front of g.
func loopFront(t testing.TB, h *Handler, g *upstream.Group) (string, *Server) {
	t.Helper()
	r := &Route{Name: "all", Upstream: g}
	if h == nil {
		h = &Handler{}
	}
	h.Router = RouterFunc(func(*Session) *Route { return r })
	h.ErrorLog = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := NewServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(ln, &ListenerOptions{EventLoop: true})
	t.Cleanup(func() {
		srv.Shutdown(t.Context())
		g.Close()
	})
	return ln.Addr().String(), srv
}

// TestLoopHandsOverMidConnection: one keep-alive connection carries, in
// turn, requests the loop serves itself and requests it hands to a
// goroutine (a streamed upload, a large response, a chunked response),
// and every response arrives whole and in order.
func TestLoopHandsOverMidConnection(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	var conns atomic.Int32
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "small")
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			io.WriteString(w, "chunked body")
		case "/upload":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got %d", len(b))
		}
	}))
	origin.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	origin.Start()
	defer origin.Close()
	g := group(t, upstream.ProtoHTTP1, origin.Listener.Addr().String())
	addr, _ := loopFront(t, nil, g)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	upload := strings.Repeat("u", 300<<10)
	steps := []struct{ req, want string }{
		{"GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "small"},
		{"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "got 5"}, // inline: stays in the loop
		{"GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "small"},
		{"GET /big HTTP/1.1\r\nHost: a\r\n\r\n", string(big)}, // spliced: handed over
		{"GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "small"},
		{"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n", "chunked body"},
		{"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(upload)) + "\r\n\r\n" + upload, "got " + strconv.Itoa(len(upload))},
		{"GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "small"},
	}
	for i, st := range steps {
		go func() { _, _ = io.WriteString(c, st.req) }()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(got) != st.want {
			t.Fatalf("step %d: status %d, %d bytes (%v), want %d bytes", i, resp.StatusCode, len(got), err, len(st.want))
		}
	}
	// Three pipelined requests in one write, answered in order.
	io.WriteString(c, "GET /small HTTP/1.1\r\nHost: a\r\n\r\nPOST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /small HTTP/1.1\r\nHost: a\r\n\r\n")
	for i, want := range []string{"small", "got 2", "small"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Fatalf("pipelined %d: %q, want %q", i, got, want)
		}
	}
}

// TestLoopWatchesIdlePeerConnections: an idle pooled connection stays
// watched by the loop. When the peer closes it, or sends bytes nobody
// asked for, it leaves the pool at once (the pool's idle count drops
// with no request made), and the next request goes on a new connection
// and gets its own response, never the unasked bytes.
func TestLoopWatchesIdlePeerConnections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(net.Conn)
	}{
		{"peer closes", func(c net.Conn) { c.Close() }},
		{"unasked bytes", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kick := make(chan struct{})
			var accepted atomic.Int32
			originAddr := testkit.TCP(t, 10*time.Second, func(c net.Conn) {
				n := accepted.Add(1)
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					io.Copy(io.Discard, req.Body)
					body := fmt.Sprintf("conn %d", n)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					if n == 1 {
						<-kick
						tc.after(c)
						if tc.name == "peer closes" {
							return
						}
					}
				}
			})
			g := group(t, upstream.ProtoHTTP1, originAddr)
			pool := g.Peers[0].Pool()
			addr, _ := loopFront(t, nil, g)
			get := func() string {
				t.Helper()
				resp, err := http.Get("http://" + addr + "/")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			if got := get(); got != "conn 1" {
				t.Fatalf("first response %q", got)
			}
			testkit.WaitFor(t, 5*time.Second, "the connection to be pooled", func() bool {
				_, idle, _ := pool.Stats()
				return idle == 1
			})
			close(kick)
			testkit.WaitFor(t, 5*time.Second, "the loop to drop the pooled connection", func() bool {
				_, idle, _ := pool.Stats()
				return idle == 0
			})
			if got := get(); got != "conn 2" {
				t.Fatalf("after the peer's %s: got %q, want the answer of a new connection", tc.name, got)
			}
		})
	}
}

// TestLoopTimeouts: the loop's deadlines answer as the goroutine
// engine's do: 408 for a head that stalls, 504 for a peer that does not
// answer, and a quiet close of an idle connection.
func TestLoopTimeouts(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	originAddr := testkit.TCP(t, 10*time.Second, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		<-hang // never answers
	})
	g := group(t, upstream.ProtoHTTP1, originAddr)
	g.Timeouts.ResponseHeader = 300 * time.Millisecond
	h := &Handler{Limits: Limits{HeaderReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}}
	addr, _ := loopFront(t, h, g)
	read := func(send string) (string, time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if send != "" {
			io.WriteString(c, send)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		all, _ := io.ReadAll(c)
		return string(all), time.Since(start)
	}
	if got, took := read("GET / HTTP/1.1\r\nHost: a\r\n"); !strings.HasPrefix(got, "HTTP/1.1 408 ") || took < 250*time.Millisecond {
		t.Errorf("stalled head: %q after %v, want a 408 after the header timeout", got, took)
	}
	if got, took := read("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 504 ") || took < 250*time.Millisecond {
		t.Errorf("silent peer: %q after %v, want a 504 after the response-header timeout", got, took)
	}
	if got, took := read(""); got != "" || took < 250*time.Millisecond {
		t.Errorf("idle connection: %q after %v, want a quiet close after the idle timeout", got, took)
	}
}

// BenchmarkProxyKeepAliveLoop is BenchmarkProxyKeepAlive on the event
// loop.
func BenchmarkProxyKeepAliveLoop(b *testing.B) {
	origin := testkit.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n"))
	g := group(b, upstream.ProtoHTTP1, origin)
	addr, _ := loopFront(b, &Handler{Limits: Limits{MaxRequestsPerConn: 1 << 30}}, g)
	benchKeepAlive(b, addr)
}

// BenchmarkProxyNewConnLoop: a new client connection per request
// (Connection: close) on the event loop. allocs/op includes the test
// client's dial and read (about a dozen).
func BenchmarkProxyNewConnLoop(b *testing.B) {
	origin := testkit.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n"))
	g := group(b, upstream.ProtoHTTP1, origin)
	addr, _ := loopFront(b, nil, g)
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	one := func() {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := nc.Read(buf); err != nil {
				break
			}
		}
		nc.Close()
	}
	benchRounds(b, one)
}
