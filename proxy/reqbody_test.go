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
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir/upstream"
)

// upperBody upper-cases request bodies in place, counts what it saw and
// how often it was told the body ended, and refuses a body that
// contains "forbidden" with 403 (a refusal must not count against the
// peer).
type upperBody struct {
	mu        sync.Mutex
	seen, end int
}

func (f *upperBody) RequestBodyFilter(s *Session, chunk []byte, end bool) error {
	f.mu.Lock()
	f.seen += len(chunk)
	if end {
		f.end++
	}
	f.mu.Unlock()
	if bytes.Contains(chunk, []byte("forbidden")) {
		return Reject(403, "body refused by a filter")
	}
	copy(chunk, bytes.ToUpper(chunk))
	return nil
}

func (f *upperBody) take() (seen, end int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen, end, f.seen, f.end = f.seen, f.end, 0, 0
	return seen, end
}

// TestRequestBodyFilter: a request body filter sees every byte once and
// the end once, over every way a body can come (small and buffered with
// its head, large and streamed, chunked, HTTP/2), its changes reach the
// peer with the client's framing, and its refusal is answered without
// ejecting the peer.
func TestRequestBodyFilter(t *testing.T) {
	f := &upperBody{}
	for _, proto := range []upstream.Proto{upstream.ProtoHTTP1, upstream.ProtoH2} {
		// An echo that reads the whole body first (net/http's HTTP/1.1
		// server may drop the rest of a body once its answer has begun).
		origin := serveOrigin(t, proto == upstream.ProtoH2, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
		})
		g := group(t, proto, origin)
		g.PassiveMaxFails, g.PassiveEjectFor = 1, time.Minute
		r := &Route{Name: "all", Upstream: g}
		srv := NewServer(&Handler{Router: RouterFunc(func(*Session) *Route { return r }), Chain: MustChain(f),
			ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.ServeListener(ln, &ListenerOptions{H2C: true})
		t.Cleanup(func() { srv.Shutdown(t.Context()); g.Close() })
		url := "http://" + ln.Addr().String() + "/echo"
		for _, c := range []struct {
			name    string
			client  *http.Client
			size    int
			chunked bool
		}{
			{"small, with its head", http.DefaultClient, 100, false},
			{"large, streamed", http.DefaultClient, 200 << 10, false},
			{"chunked", http.DefaultClient, 50 << 10, true},
			{"HTTP/2", h2Client(nil), 70 << 10, false},
		} {
			body := strings.Repeat("abcdefgh", c.size/8)
			var rd io.Reader = strings.NewReader(body)
			if c.chunked {
				rd = io.MultiReader(rd)
			}
			resp, err := c.client.Post(url, "text/plain", rd)
			if err != nil {
				t.Fatalf("%v, %s: %v", proto, c.name, err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != strings.ToUpper(body) {
				t.Fatalf("%v, %s: status %d, %d bytes back, upper-cased: %v", proto, c.name, resp.StatusCode, len(got), string(got) == strings.ToUpper(body))
			}
			if seen, end := f.take(); seen != len(body) || end != 1 {
				t.Fatalf("%v, %s: the filter saw %d bytes and %d ends, want %d and 1", proto, c.name, seen, end, len(body))
			}
		}
		for _, size := range []int{100, 100 << 10} {
			body := strings.Repeat("x", size-9) + "forbidden"
			// Over a plain connection: Weir answers once the body's last
			// bytes are in, and net/http's client may then report its
			// own body write, racing the close, instead of the answer.
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: "+
				strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			conn.Close()
			resp.Body.Close()
			if resp.StatusCode != 403 || !strings.Contains(string(msg), "refused by a filter") {
				t.Fatalf("%v, refused %d-byte body: %d %q", proto, size, resp.StatusCode, msg)
			}
			f.take()
			// The refusal was not the peer's failure: with max_fails 1 it
			// would otherwise be ejected and the next request get 503.
			resp, err = http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%v, after a refused body: %d (peer ejected?)", proto, resp.StatusCode)
			}
		}
	}
}

// A client that sends its whole body before it reads gets Weir's refusal,
// not a reset: Weir shuts its side and discards the rest of the body
// (lingering close) instead of closing with unread bytes.
func TestRefusedBodyLingeringClose(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the origin was reached")
	}))
	defer origin.Close()
	h := &Handler{}
	h.Limits.MaxBodyBytes = 1 << 10
	addr, _ := testProxy(t, h, origin.Listener.Addr().String())
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 16 << 20 // more than the socket buffers of both ends hold
	fmt.Fprintf(nc, "POST /upload HTTP/1.1\r\nHost: weir.test\r\nContent-Length: %d\r\n\r\n", size)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := nc.Write(chunk); err != nil {
			t.Fatalf("writing the body after %d bytes: %v", sent, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 {
		t.Fatalf("status %d; want 413", resp.StatusCode)
	}
}
