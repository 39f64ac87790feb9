package adversarial

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testutil"
)

// TestResponseSplittingAcrossClients: an origin answers one request with
// two responses. The extra response must never reach another client that
// Weir would otherwise serve on the same pooled upstream connection
// (response queue poisoning). Two shapes: both responses in one write, and
// the extra one arriving after the first was relayed and the connection
// went back to the pool.
func TestResponseSplittingAcrossClients(t *testing.T) {
	const injected = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
	first := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
	for _, tc := range []struct {
		name  string
		delay bool
	}{{"one write", false}, {"after a pause", true}} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{})
			rec := testutil.NewRecorder(t, func(i int, _ *testutil.SimpleRequest) testutil.Action {
				if i != 0 {
					return testutil.OK(i, nil)
				}
				a := testutil.Action{Write: []byte(first + injected), Then: func() { close(sent) }}
				if tc.delay {
					a.Pause, a.PauseAfter = 50*time.Millisecond, len(first)
				}
				return a
			})
			w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, "    retries: 0\n", ""), weir.Options{})

			c1, err := testutil.DialRaw(w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c1.Close()
			resp, err := c1.Do(testutil.Get("/a"), false, 5*time.Second)
			if err != nil || resp.Status != 200 || string(resp.Body) != "first" {
				t.Fatalf("client 1: %v %+v", err, resp)
			}
			// The injected bytes have reached Weir's side of the upstream
			// connection before client 2 asks: sent, and in the receive
			// queue of Weir's socket. (Bytes that arrive later, after
			// Weir's reuse check, cannot be told from a response to the
			// next request by any HTTP/1.1 proxy: see docs/security.md.)
			<-sent
			if tc.delay {
				testutil.Eventually(2*time.Second, func() bool {
					n, ok := testutil.RecvQueue(rec.Addr)
					return !ok || n >= len(injected)
				})
			}
			c2, err := testutil.DialRaw(w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			for i := 1; i <= 3; i++ {
				resp, err := c2.Do(testutil.Get("/b"), false, 5*time.Second)
				if err != nil {
					t.Fatalf("client 2 request %d: %v", i, err)
				}
				if string(resp.Body) == "injected" || resp.Status != 200 || !strings.HasPrefix(string(resp.Body), "response ") {
					t.Fatalf("client 2 request %d got %d %q: another client's (injected) response", i, resp.Status, resp.Body)
				}
			}
			// And client 1's connection is still in step too.
			resp, err = c1.Do(testutil.Get("/a2"), false, 5*time.Second)
			if err != nil || string(resp.Body) == "injected" {
				t.Fatalf("client 1 second request: %v %+v", err, resp)
			}
			if n := rec.Accepted(); n < 2 {
				t.Fatalf("the origin saw %d connections: the poisoned one was reused", n)
			}
		})
	}
}

// TestUpstreamRefused: a peer that refuses connections gives a quick 502
// and the client connection stays usable.
func TestUpstreamRefused(t *testing.T) {
	addr := testutil.FreePort(t) // nothing listens there
	w := testutil.StartWeir(t, testutil.OneRoute(addr, "    retries: 0\n", ""), weir.Options{})
	c, err := testutil.DialRaw(w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		start := time.Now()
		resp, err := c.Do(testutil.Get("/"), false, 5*time.Second)
		if err != nil || resp.Status != 502 || resp.Close {
			t.Fatalf("request %d to a refusing peer: %v %+v, want 502 keep-alive", i, err, resp)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("502 took %v", d)
		}
	}
}

// TestUpstreamFailuresThenNormal: after each kind of upstream failure on
// a pooled connection, the same client connection, when kept, gets the
// right response to its next request (no mixed-up response), and when
// closed, a new one does.
func TestUpstreamFailuresThenNormal(t *testing.T) {
	actions := map[string]testutil.Action{
		"reset mid-head":  {Write: []byte("HTTP/1.1 200 OK\r\nContent-Le"), Reset: true},
		"reset mid-body":  {Write: []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"), Reset: true},
		"longer than CL":  {Write: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")},
		"shorter than CL": {Write: []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"), Close: true},
		"invalid status":  {Write: []byte("HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok")},
		"bad chunking":    {Write: []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX")},
	}
	for name, bad := range actions {
		t.Run(name, func(t *testing.T) {
			rec := testutil.NewRecorder(t, func(i int, _ *testutil.SimpleRequest) testutil.Action {
				if i == 1 {
					return bad
				}
				return testutil.OK(i, nil)
			})
			w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, "    retries: 0\n", ""), weir.Options{})
			c, err := testutil.DialRaw(w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Request 0 warms the pool; request 1 meets the failure on the
			// pooled connection.
			if resp, err := c.Do(testutil.Get("/0"), false, 5*time.Second); err != nil || string(resp.Body) != "response 0" {
				t.Fatalf("warm-up: %v %+v", err, resp)
			}
			resp, err := c.Do(testutil.Get("/1"), false, 5*time.Second)
			kept := err == nil && !resp.Close
			if err == nil && resp.Status == 200 && string(resp.Body) != "ok" {
				t.Fatalf("failed exchange relayed as a complete 200: %q", resp.Body)
			}
			if !kept {
				c.Close()
				if c, err = testutil.DialRaw(w.Addr); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			for i := 2; i <= 3; i++ {
				resp, err := c.Do(testutil.Get("/next"), false, 5*time.Second)
				want := "response " + strconv.Itoa(i)
				if err != nil || resp.Status != 200 || string(resp.Body) != want {
					t.Fatalf("request %d after the failure (client connection kept: %v): %v %+v, want %q", i, kept, err, resp, want)
				}
			}
		})
	}
}

// TestUpstreamNeverAnswersThenServes is u31 with a second client: while
// one request waits for its 504, another client is served by a second
// connection to the same peer.
func TestUpstreamNeverAnswersThenServes(t *testing.T) {
	rec := testutil.NewRecorder(t, func(i int, r *testutil.SimpleRequest) testutil.Action {
		if r.Target == "/hang" {
			return testutil.Action{Hang: true}
		}
		return testutil.OK(i, r)
	})
	w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, "    retries: 0\n    timeouts: {response_header: 700ms}\n", ""), weir.Options{})
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c, err := testutil.DialRaw(w.Addr)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		resp, err := c.Do(testutil.Get("/hang"), false, 5*time.Second)
		if err == nil && resp.Status != 504 {
			err = fmt.Errorf("status %d, want 504", resp.Status)
		}
		done <- err
	}()
	c, err := testutil.DialRaw(w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Do(testutil.Get("/fast"), false, 5*time.Second)
	if err != nil || resp.Status != 200 {
		t.Fatalf("a normal request while another hangs: %v %+v", err, resp)
	}
	if err := <-done; err != nil {
		t.Fatalf("hanging request: %v", err)
	}
	if d := time.Since(start); d < 700*time.Millisecond || d > 3*time.Second {
		t.Fatalf("504 after %v, want about 700ms", d)
	}
}
