// Command embed shows Weir used as a library: a reverse proxy built from a
// YAML configuration, with two filters of its own written against the
// same public hooks Weir's built-in features use:
//
//   - an API-key check that answers 401 itself (a RequestFilter), and
//   - a response header that names the peer that served the request
//     (a ResponseFilter).
//
// Run it next to any HTTP server on 127.0.0.1:9000:
//
//	go run ./examples/embed
//	curl -H 'X-Api-Key: secret' http://127.0.0.1:8080/
package main

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/proxy"
)

const cfgYAML = `
listeners:
  - address: 127.0.0.1:8080
routes:
  - upstream: app
upstreams:
  app:
    peers: [http://127.0.0.1:9000]
`

// apiKey rejects requests without the right X-Api-Key header.
type apiKey struct{ key []byte }

func (a apiKey) RequestFilter(s *proxy.Session) error {
	if subtle.ConstantTimeCompare(s.Req.Header.Get("X-Api-Key"), a.key) != 1 {
		return proxy.Reject(401, "missing or wrong X-Api-Key")
	}
	// The key is for Weir, not for the upstream.
	s.Req.Header.Del("X-Api-Key")
	return nil
}

// servedBy adds X-Served-By with the upstream peer's address.
type servedBy struct{}

func (servedBy) ResponseFilter(s *proxy.Session, resp *message.Response) error {
	if s.Peer != nil {
		resp.Header.AddString("X-Served-By", s.Peer.Addr)
	}
	return nil
}

var (
	_ proxy.RequestFilter  = apiKey{}
	_ proxy.ResponseFilter = servedBy{}
)

func main() {
	cfg, err := config.Parse("embedded.yaml", []byte(cfgYAML))
	if err != nil {
		slog.Error("bad configuration", "err", err)
		os.Exit(1)
	}
	key := os.Getenv("API_KEY")
	if key == "" {
		key = "secret"
	}
	srv, err := weir.New(cfg, weir.Options{
		Filters: []any{apiKey{key: []byte(key)}, servedBy{}},
		// Both filters only compare and set headers: they never block, so
		// the listener keeps its event loop.
		NonBlockingFilters: true,
	})
	if err != nil {
		slog.Error("cannot start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx); err != nil {
		slog.Error("stopped", "err", err)
		os.Exit(1)
	}
}
