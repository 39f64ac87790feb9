package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/upstream"
)

// grpcResetOrigin is an h2c origin that reads a call's body, waits for
// the time in the X-Reset-After header and then resets the stream
// without a response, as a gRPC server does when a call's deadline
// expires. Without that header it answers a gRPC OK.
func grpcResetOrigin(tb testing.TB) string {
	tb.Helper()
	return serveOrigin(tb, true, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if d, err := time.ParseDuration(r.Header.Get("X-Reset-After")); err == nil {
			time.Sleep(d) // the origin's behaviour under test, not synchronisation
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.Header().Set("Grpc-Status", "0")
	})
}

// grpcCall sends one gRPC-framed call over h2c and returns the HTTP
// status and the grpc-status and grpc-message it got (from the headers of
// a trailers-only response, or from the trailers).
func grpcCall(t *testing.T, c *http.Client, url string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader("\x00\x00\x00\x00\x02hi"))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st, msg := resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	if st == "" {
		st, msg = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	}
	return resp.StatusCode, st, msg
}

// TestGRPCLocalReplies: what Weir itself answers to a gRPC client is a
// gRPC status, not an HTTP error page; a peer that resets a call after
// the call's grpc-timeout gives DEADLINE_EXCEEDED and is not held against
// the peer, while an earlier reset gives UNAVAILABLE.
func TestGRPCLocalReplies(t *testing.T) {
	origin := grpcResetOrigin(t)
	g := group(t, upstream.ProtoH2, origin)
	g.Retries = 0
	g.PassiveMaxFails, g.PassiveEjectFor = 1, time.Minute
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, g)
	c := h2Client(nil)
	url := "http://" + addr + "/weir.test.Echo/Slow"

	// Reset after the call's deadline: DEADLINE_EXCEEDED.
	code, st, msg := grpcCall(t, c, url, map[string]string{"Grpc-Timeout": "100m", "X-Reset-After": "200ms"})
	if code != 200 || st != "4" || !strings.Contains(msg, "grpc-timeout") {
		t.Fatalf("reset after the deadline: HTTP %d, grpc-status %q, grpc-message %q; want 200, 4", code, st, msg)
	}
	// That reset did not eject the only peer (one failure would).
	if code, st, _ := grpcCall(t, c, url, nil); code != 200 || st != "0" {
		t.Fatalf("call after a deadline reset: HTTP %d, grpc-status %q; want 200, 0 (peer ejected?)", code, st)
	}
	// Reset well before the deadline: the peer failed, UNAVAILABLE, and
	// the peer is now ejected: the next call finds no peer, UNAVAILABLE too.
	for i, want := range []string{"502 Bad Gateway", "503 Service Unavailable"} {
		code, st, msg = grpcCall(t, c, url, map[string]string{"Grpc-Timeout": "10S", "X-Reset-After": "1ms"})
		if code != 200 || st != "14" || !strings.HasPrefix(msg, want) {
			t.Fatalf("call %d after an early reset: HTTP %d, grpc-status %q, grpc-message %q; want 200, 14, %q", i, code, st, msg, want)
		}
	}
	// A plain HTTP request to the same place still gets a plain page.
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Grpc-Status") != "" {
		t.Fatalf("plain request: HTTP %d, grpc-status %q; want 503 without one", resp.StatusCode, resp.Header.Get("Grpc-Status"))
	}
}

func TestGRPCTimeoutAndMessage(t *testing.T) {
	for in, want := range map[string]time.Duration{"100m": 100 * time.Millisecond, "2S": 2 * time.Second,
		"1H": time.Hour, "5u": 5 * time.Microsecond, "99999999n": 99999999, "3M": 3 * time.Minute} {
		if got, ok := grpcTimeout([]byte(in)); !ok || got != want {
			t.Errorf("grpcTimeout(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "m", "100", "100x", "123456789m", "-1S", "1 S"} {
		if _, ok := grpcTimeout([]byte(bad)); ok {
			t.Errorf("grpcTimeout(%q) accepted", bad)
		}
	}
	if got := string(appendGRPCMessage(nil, []byte("50% off: caf\xc3\xa9\n"))); got != "50%25 off: caf%C3%A9%0A" {
		t.Errorf("grpc-message encoding: %q", got)
	}
}
