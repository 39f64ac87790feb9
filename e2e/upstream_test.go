package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirproxy/weir"
)

// TestDeadOriginFailover: when one of two origins dies, clients keep
// getting answers from the other, and Weir stops offering the dead one.
func TestDeadOriginFailover(t *testing.T) {
	t.Parallel()
	// setup starts two origins and Weir, warms the upstream pools with
	// requests to both, then kills b.
	setup := func(t *testing.T, extra string) (*proxyUnderTest, *http.Client, *origin, *origin) {
		a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
		p := startWeir(t, twoOriginConfig(a, b, extra), weir.Options{})
		c := newClient(t)
		seen := map[string]int{}
		for range 10 {
			_, body := get(t, c, p.url("/"))
			seen[body]++
		}
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Fatalf("before the failure both origins should serve: %v", seen)
		}
		b.Close() // closes its listener and its connections
		return p, c, a, b
	}
	check := func(t *testing.T, p *proxyUnderTest, c *http.Client) {
		t.Helper()
		for i := range 20 {
			status, body := get(t, c, p.url(fmt.Sprintf("/after/%d", i)))
			if status != 200 || body != "a" {
				t.Fatalf("request %d after b died: %d %q, want 200 from a", i, status, body)
			}
		}
	}

	t.Run("retry on connect failure", func(t *testing.T) {
		t.Parallel()
		p, c, _, _ := setup(t, "    passive_health: {max_fails: 0}\n")
		check(t, p, c)
	})
	t.Run("passive ejection", func(t *testing.T) {
		t.Parallel()
		p, c, a, b := setup(t, "    passive_health: {max_fails: 1, eject_for: 1m}\n")
		check(t, p, c)
		g := p.srv.Group("app")
		if g.Peers[1].Addr != b.addr() {
			t.Fatalf("peer 1 is %s, want b at %s", g.Peers[1].Addr, b.addr())
		}
		if g.Peers[1].Available() {
			t.Errorf("the dead origin is still available after failing requests")
		}
		if !g.Peers[0].Available() || g.Peers[0].Addr != a.addr() {
			t.Errorf("the live origin %s is not available", g.Peers[0].Addr)
		}
	})
	t.Run("health check marks it down", func(t *testing.T) {
		t.Parallel()
		p, c, _, b := setup(t, "    passive_health: {max_fails: 0}\n"+
			"    health_check: {path: /, interval: 100ms, timeout: 100ms, fall: 2, rise: 1}\n")
		g := p.srv.Group("app")
		if g.Peers[1].Addr != b.addr() {
			t.Fatalf("peer 1 is %s, want b at %s", g.Peers[1].Addr, b.addr())
		}
		waitFor(t, 5*time.Second, "the health check to mark the dead origin down", func() bool {
			return !g.Peers[1].Available()
		})
		if !g.Peers[0].Available() {
			t.Errorf("the live origin was marked down too")
		}
		check(t, p, c)
	})
}

// TestSlowOriginGatewayTimeout: an origin that does not answer within
// timeouts.response_header gets the client a 504 at about that time, and
// the client's connection stays usable.
func TestSlowOriginGatewayTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "done")
	}))
	p := startWeir(t, oneRouteConfig(o, "", "    timeouts: {response_header: 300ms}\n"), weir.Options{})
	t.Cleanup(func() { close(release) }) // runs before Weir drains

	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	start := time.Now()
	if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, _ := readResponse(t, br, "GET")
	elapsed := time.Since(start)
	if resp.StatusCode != 504 {
		t.Fatalf("slow origin: status %d, want 504", resp.StatusCode)
	}
	if elapsed < 300*time.Millisecond || elapsed >= 2300*time.Millisecond {
		t.Fatalf("504 after %v, want between 300ms and 2.3s", elapsed)
	}
	if _, err := io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "done" {
		t.Fatalf("next request on the same connection: %d %q", resp.StatusCode, body)
	}
}

// TestUpstreamKeepAlive: 200 sequential requests on one client connection
// reuse upstream connections instead of opening one each.
func TestUpstreamKeepAlive(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for i := range 200 {
		if _, err := fmt.Fprintf(c, "GET /r/%d HTTP/1.1\r\nHost: x\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "o" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := o.requests.Load(); got != 200 {
		t.Fatalf("origin served %d requests, want 200", got)
	}
	if got := o.accepts.Load(); got > 2 {
		t.Fatalf("200 sequential requests opened %d upstream connections, want at most 2", got)
	}
}

// TestStaleUpstreamConnections: idle upstream connections that the origin
// has closed (its keep-alive timeout, a restart) cost the client nothing:
// not an upload, not a 502, and the origin is not reported as failing.
func TestStaleUpstreamConnections(t *testing.T) {
	t.Parallel()
	t.Run("upload after the origin closed the idle connection", func(t *testing.T) {
		t.Parallel()
		o := bodyOrigin(t, nil)
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
		c := newClient(t)
		if status, _ := get(t, c, p.url("/warm")); status != 200 {
			t.Fatalf("warm-up: %d", status)
		}
		o.CloseClientConnections() // what an origin's idle timeout does
		waitFor(t, 5*time.Second, "the origin to close its connection", func() bool { return o.closes.Load() == 1 })
		body := strings.Repeat("u", 100<<10) // too large to be replayed
		resp, err := c.Post(p.url("/echo"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != body {
			t.Fatalf("upload over a stale pooled connection: %d, %d of %d bytes back", resp.StatusCode, len(got), len(body))
		}
	})
	t.Run("upload after the origin's keep-alive timeout", func(t *testing.T) {
		t.Parallel()
		// The origin closes connections idle for 300ms; Weir's own
		// per-read timeout (timeouts.idle) is shorter, so it has expired
		// on the pooled connection too by the time the origin closes it.
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
		})
		o := newOriginWith(t, echo, func(s *http.Server) { s.IdleTimeout = 300 * time.Millisecond })
		p := startWeir(t, oneRouteConfig(o, "", "    timeouts: {idle: 100ms}\n"), weir.Options{})
		c := newClient(t)
		if status, _ := get(t, c, p.url("/warm")); status != 200 {
			t.Fatalf("warm-up: %d", status)
		}
		waitFor(t, 5*time.Second, "the origin's idle timeout to close the connection", func() bool { return o.closes.Load() == 1 })
		body := strings.Repeat("u", 100<<10)
		resp, err := c.Post(p.url("/echo"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != body {
			t.Fatalf("upload after the origin's idle timeout: %d, %d of %d bytes back", resp.StatusCode, len(got), len(body))
		}
	})
	t.Run("origin drops many idle connections", func(t *testing.T) {
		t.Parallel()
		const n = 8
		release := make(chan struct{})
		var once sync.Once
		var held atomic.Int64
		o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				held.Add(1)
				<-release
			}
			_, _ = io.WriteString(w, "ok")
		}))
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
		t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before Weir drains
		// n concurrent requests leave n idle connections in the pool.
		statuses := make(chan int, n)
		for range n {
			c := newClient(t)
			go func() {
				resp, err := c.Get(p.url("/hold"))
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		waitFor(t, 10*time.Second, "the concurrent requests to reach the origin", func() bool { return held.Load() == n })
		once.Do(func() { close(release) })
		for range n {
			if st := <-statuses; st != 200 {
				t.Fatalf("concurrent request: status %d", st)
			}
		}
		o.CloseClientConnections()
		waitFor(t, 5*time.Second, "the origin to close its connections", func() bool { return o.closes.Load() == n })
		c := newClient(t)
		for i := range 5 {
			if status, body := get(t, c, p.url("/after")); status != 200 || body != "ok" {
				t.Fatalf("request %d after the origin closed %d idle connections: %d %q", i, n, status, body)
			}
		}
		if !p.srv.Group("app").Peers[0].Available() {
			t.Errorf("the origin was ejected for closing idle connections")
		}
	})
}
