package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testkit"
)

// seenRequest is what echoOrigin reports about a request it received.
type seenRequest struct {
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
}

// echoOrigin answers every request with a JSON description of it.
func echoOrigin(t testing.TB) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seenRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header})
	}))
}

func decodeSeen(t testing.TB, body []byte) seenRequest {
	t.Helper()
	var s seenRequest
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("origin reply %q: %v", clip(body), err)
	}
	return s
}

func oneRouteConfig(o *origin, routeExtra, topExtra string) string {
	return fmt.Sprintf(`
routes:
  - upstream: app
%supstreams:
  app:
    peers: [%q]
%s`, routeExtra, o.peer(), topExtra)
}

// TestForwardingHeaders: the origin learns the client address, scheme and
// host the way the configuration says, and sees the client's Host unless
// set_host replaces it.
func TestForwardingHeaders(t *testing.T) {
	t.Parallel()
	t.Run("x-forwarded by default (curl)", func(t *testing.T) {
		t.Parallel()
		o := echoOrigin(t)
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
		// A client-sent X-Forwarded-For must not survive: the default
		// does not trust it.
		out, _ := curl(t, "-H", "Host: app.example.com", "-H", "X-Forwarded-For: 6.6.6.6", p.url("/who"))
		s := decodeSeen(t, out)
		want := map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "app.example.com",
			"Via":               "1.1 weir",
			"Forwarded":         "",
		}
		for k, v := range want {
			if got := strings.Join(s.Header.Values(k), ", "); got != v {
				t.Errorf("origin saw %s %q, want %q", k, got, v)
			}
		}
		if s.Host != "app.example.com" {
			t.Errorf("origin saw Host %q, want the client's app.example.com", s.Host)
		}
		if s.Path != "/who" {
			t.Errorf("origin saw path %q", s.Path)
		}
	})
	t.Run("absolute-form target", func(t *testing.T) {
		t.Parallel()
		o := echoOrigin(t)
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
		c := dial(t, p.addr)
		// RFC 9112 3.2.2: the target's authority wins over the Host field,
		// for routing and for what the origin sees alike.
		if _, err := io.WriteString(c, "GET http://app.example.com/abs?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		raw := readUntilClose(t, c, 10*time.Second)
		resp, body := readResponse(t, bufio.NewReader(bytes.NewReader(raw)), "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		s := decodeSeen(t, []byte(body))
		if s.Host != "app.example.com" || s.Path != "/abs" || s.Query != "q=1" {
			t.Errorf("origin saw Host %q, path %q, query %q; want app.example.com, /abs, q=1", s.Host, s.Path, s.Query)
		}
		if got := s.Header.Get("X-Forwarded-Host"); got != "app.example.com" {
			t.Errorf("origin saw X-Forwarded-Host %q", got)
		}
	})
	t.Run("set_host", func(t *testing.T) {
		t.Parallel()
		o := echoOrigin(t)
		p := startWeir(t, oneRouteConfig(o, "    set_host: backend.internal:9000\n", ""), weir.Options{})
		req, _ := http.NewRequest("GET", p.url("/x"), nil)
		req.Host = "app.example.com"
		s := doSeen(t, req)
		if s.Host != "backend.internal:9000" {
			t.Errorf("origin saw Host %q, want backend.internal:9000", s.Host)
		}
		if got := s.Header.Get("X-Forwarded-Host"); got != "app.example.com" {
			t.Errorf("origin saw X-Forwarded-Host %q, want the client's app.example.com", got)
		}
	})
	t.Run("forwarded (RFC 7239)", func(t *testing.T) {
		t.Parallel()
		o := echoOrigin(t)
		p := startWeir(t, oneRouteConfig(o, "", "proxy:\n  forwarded_headers: forwarded\n"), weir.Options{})
		req, _ := http.NewRequest("GET", p.url("/x"), nil)
		req.Host = "app.example.com"
		s := doSeen(t, req)
		if got := s.Header.Values("Forwarded"); len(got) != 1 || got[0] != "for=127.0.0.1;host=app.example.com;proto=http" {
			t.Errorf("origin saw Forwarded %q, want [for=127.0.0.1;host=app.example.com;proto=http]", got)
		}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			if v := s.Header.Get(k); v != "" {
				t.Errorf("forwarded_headers: forwarded also sent %s: %q", k, v)
			}
		}
		if s.Host != "app.example.com" {
			t.Errorf("origin saw Host %q", s.Host)
		}
		// A host with a port is not an RFC 7239 token (":" is not a
		// tchar): it must be sent as a quoted-string.
		req, _ = http.NewRequest("GET", p.url("/x"), nil)
		req.Host = "app.example.com:8443"
		s = doSeen(t, req)
		if got := s.Header.Get("Forwarded"); got != `for=127.0.0.1;host="app.example.com:8443";proto=http` {
			t.Errorf("origin saw Forwarded %q, want for=127.0.0.1;host=\"app.example.com:8443\";proto=http", got)
		}
	})
}

func doSeen(t testing.TB, req *http.Request) seenRequest {
	t.Helper()
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	return decodeSeen(t, body)
}

// TestHopByHopHeadersStripped: headers that describe one connection stop
// at Weir in both directions.
func TestHopByHopHeadersStripped(t *testing.T) {
	t.Parallel()
	t.Run("request", func(t *testing.T) {
		t.Parallel()
		o := echoOrigin(t)
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
		c := dial(t, p.addr)
		_, err := io.WriteString(c, "GET /hop HTTP/1.1\r\n"+
			"Host: app.example.com\r\n"+
			"Connection: close, X-Secret\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"TE: trailers\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: h2c\r\n"+
			"X-Secret: only-for-weir\r\n"+
			"X-Normal: kept\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		raw := readUntilClose(t, c, 10*time.Second)
		resp, body := readResponse(t, bufio.NewReader(bytes.NewReader(raw)), "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		s := decodeSeen(t, []byte(body))
		for _, k := range []string{"Connection", "Keep-Alive", "TE", "Proxy-Connection", "Upgrade", "X-Secret"} {
			if v := s.Header.Values(k); len(v) > 0 {
				t.Errorf("hop-by-hop %s reached the origin: %q", k, v)
			}
		}
		if got := s.Header.Get("X-Normal"); got != "kept" {
			t.Errorf("end-to-end X-Normal = %q at the origin, want kept", got)
		}
	})
	t.Run("response", func(t *testing.T) {
		t.Parallel()
		addr := testkit.Fixed(t, []byte("HTTP/1.1 200 OK\r\n"+
			"Content-Length: 2\r\n"+
			"Connection: keep-alive, X-Origin-Secret\r\n"+
			"Keep-Alive: timeout=5, max=100\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: h2c\r\n"+
			"X-Origin-Secret: internal\r\n"+
			"X-Kept: yes\r\n\r\nok"))
		p := startWeir(t, fmt.Sprintf("routes:\n  - upstream: app\nupstreams:\n  app:\n    peers: [\"http://%s\"]\n", addr), weir.Options{})
		c := newClient(t)
		for i := range 2 { // the second one over a pooled upstream connection
			resp, err := c.Get(p.url("/"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
			for _, k := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade", "X-Origin-Secret"} {
				if v := resp.Header.Values(k); len(v) > 0 {
					t.Errorf("hop-by-hop %s reached the client: %q", k, v)
				}
			}
			if v := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "secret") {
				t.Errorf("the origin's Connection tokens reached the client: %q", v)
			}
			if resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("end-to-end X-Kept missing: %v", resp.Header)
			}
		}
	})
}
