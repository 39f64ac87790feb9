package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/weirproxy/weir"
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

// blockingFilter holds requests for /slow until release closes.
type blockingFilter struct {
	entered chan struct{}
	release chan struct{}
}

func (f *blockingFilter) RequestFilter(s *proxy.Session) error {
	if string(s.Req.Path) == "/slow" {
		f.entered <- struct{}{}
		<-f.release
	}
	return nil
}

// TestLibraryFiltersMayBlock: a library user's filter that blocks (here
// on a channel, as one waiting on an auth service would) holds only its
// own requests. With Options.Filters set and NonBlockingFilters not, Weir
// serves the listener with a goroutine per connection, so another
// client's request is answered meanwhile; on an event loop it would wait
// behind the blocked filter.
func TestLibraryFiltersMayBlock(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	f := &blockingFilter{entered: make(chan struct{}), release: make(chan struct{})}
	p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{Filters: []any{f}})
	// One held request per core: event loops (one per core) would all be
	// stuck, each in one of them.
	n := runtime.GOMAXPROCS(0)
	slow := make(chan int, n)
	for range n {
		go func() {
			resp, err := newClient(t).Get(p.url("/slow"))
			if err != nil {
				slow <- 0
				return
			}
			resp.Body.Close()
			slow <- resp.StatusCode
		}()
		select {
		case <-f.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("a /slow request never reached the filter")
		}
	}
	c := newClient(t)
	c.Timeout = 5 * time.Second
	resp, err := c.Get(p.url("/fast"))
	close(f.release)
	if err != nil {
		t.Fatalf("a request behind a blocked filter: %v", err)
	}
	resp.Body.Close()
	for range n {
		if code := <-slow; code != 200 || resp.StatusCode != 200 {
			t.Fatalf("statuses: /slow %d, /fast %d", code, resp.StatusCode)
		}
	}
}
