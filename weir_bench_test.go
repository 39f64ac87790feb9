package weir_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/internal/testkit"
)

// BenchmarkConfiguredProxy measures one keep-alive request through a
// Weir built from YAML the way an operator runs it: a route matched on a
// path prefix, request and response headers rewritten, the access log
// written to a file and Prometheus metrics on. Its allocs/op is what
// these built-in filters add to the engine's steady state (the engine
// alone: proxy.BenchmarkProxyKeepAlive).
func BenchmarkConfiguredProxy(b *testing.B) {
	accessLog := filepath.Join(b.TempDir(), "access.log")
	origin := testkit.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\nServer: origin\r\n\r\nhello world\n"))
	yaml := fmt.Sprintf(`
listeners:
  - address: %q
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: app
    request_headers:
      add: {X-Request-Source: edge}
      remove: [Cookie]
    response_headers:
      add: {X-Frame-Options: DENY}
      remove: [Server]
upstreams:
  app:
    peers: ["http://%s"]
limits:
  max_requests_per_conn: 1000000000   # one connection for the whole run
log:
  access: %q
metrics:
  address: %q
`, freeAddr(b), origin, accessLog, freeAddr(b))
	cfg, err := config.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := weir.New(cfg, weir.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-served
		// The access log was written: one line per request.
		if data, err := os.ReadFile(accessLog); err != nil || bytes.Count(data, []byte("\n")) < b.N {
			b.Errorf("access log: %d lines for %d requests (%v)", bytes.Count(data, []byte("\n")), b.N, err)
		}
	})
	k := testkit.DialKeepAlive(b, srv.Addrs()[0].String(),
		[]byte("GET /api/items HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: a=b\r\n\r\n"), 12)
	roundTrip := func() {
		head := k.RoundTrip()
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) || !bytes.Contains(head, []byte("X-Frame-Options: DENY")) {
			b.Fatalf("unexpected response %q", head)
		}
	}
	for range 100 {
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
