package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/upstream"
)

// engineFront runs Weir's engine with one catch-all route to the peers
// at addrs (speaking proto), on a TCP listener with options lo. It
// returns the engine and the listener's address.
func engineFront(t testing.TB, lo *proxy.ListenerOptions, route func(*proxy.Route), proto upstream.Proto, addrs ...string) (*proxy.Server, string) {
	t.Helper()
	peers := make([]*upstream.Peer, len(addrs))
	for i, a := range addrs {
		peers[i] = upstream.NewPeer(a, 1, i, upstream.PoolOptions{})
	}
	bal, err := upstream.NewBalancer("round_robin", peers)
	if err != nil {
		t.Fatal(err)
	}
	g := &upstream.Group{Name: "origin", Peers: peers, Balancer: bal, Proto: proto,
		Timeouts: upstream.Timeouts{Connect: time.Second, ResponseHeader: 10 * time.Second, Idle: 10 * time.Second}}
	if proto == upstream.ProtoH2 {
		g.H2 = upstream.NewH2Transport(upstream.H2Options{})
	}
	r := &proxy.Route{Name: "all", Upstream: g}
	if route != nil {
		route(r)
	}
	srv := proxy.NewServer(&proxy.Handler{Router: proxy.RouterFunc(func(*proxy.Session) *proxy.Route { return r }),
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(ln, lo)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		g.Close()
	})
	return srv, ln.Addr().String()
}
