package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/weirproxy/weir/internal/testcert"
)

// statusHandler answers every request with the status in st and counts
// the protocols it saw.
func statusHandler(st *atomic.Int32, h2, seen *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		w.WriteHeader(int(st.Load()))
	})
}

// An HTTP check over TLS verifies the peer's certificate and reads the
// status; a peer whose certificate is not trusted is down.
func TestHealthHTTPOverTLS(t *testing.T) {
	var st, h2, seen atomic.Int32
	st.Store(200)
	stls, ctls := testcert.TLSPair(t, []string{"http/1.1"}, "127.0.0.1")
	o := httptest.NewUnstartedServer(statusHandler(&st, &h2, &seen))
	o.TLS = stls
	o.StartTLS()
	defer o.Close()
	addr := o.Listener.Addr().String()

	p := NewPeer(addr, 1, 0, PoolOptions{})
	p.SetUp(false)
	hc := fastHealth(HealthHTTP)
	ctls.ServerName = ""
	hc.TLS = ctls
	startChecks(t, []*Peer{p}, hc)
	waitFor(t, "probes over TLS", func() bool { return seen.Load() >= 2 })
	waitFor(t, "peer up over TLS", p.Available)
	st.Store(503)
	waitFor(t, "peer down on 503", func() bool { return !p.Available() })

	// Without the CA the handshake fails: the peer stays down.
	q := NewPeer(addr, 1, 1, PoolOptions{})
	q.SetUp(true)
	hc2 := fastHealth(HealthTCP)
	_, other := testcert.TLSPair(t, nil, "127.0.0.1")
	other.ServerName = ""
	hc2.TLS = other
	startChecks(t, []*Peer{q}, hc2)
	waitFor(t, "untrusted peer down", func() bool { return !q.Available() })
}

// An HTTP check through an H2Transport reaches a peer that speaks only
// cleartext HTTP/2.
func TestHealthHTTPOverH2C(t *testing.T) {
	var st, h2, seen atomic.Int32
	st.Store(200)
	srv := &http.Server{Handler: statusHandler(&st, &h2, &seen), Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true) // no HTTP/1.1 at all
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	tr := NewH2Transport(H2Options{})
	defer tr.Close()
	p := NewPeer(ln.Addr().String(), 1, 0, PoolOptions{})
	p.SetUp(false)
	hc := fastHealth(HealthHTTP)
	hc.H2 = tr
	startChecks(t, []*Peer{p}, hc)
	waitFor(t, "probes over h2c", func() bool { return seen.Load() >= 2 })
	waitFor(t, "peer up over h2c", p.Available)
	if h2.Load() != seen.Load() {
		t.Fatalf("%d of %d checks used HTTP/2", h2.Load(), seen.Load())
	}
	st.Store(500)
	waitFor(t, "peer down on 500", func() bool { return !p.Available() })
}
