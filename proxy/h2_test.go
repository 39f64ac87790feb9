package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/upstream"
)

// h2Client returns a client that speaks only HTTP/2: over TLS with
// config tc, or cleartext with prior knowledge when tc is nil.
func h2Client(tc *tls.Config) *http.Client {
	p := new(http.Protocols)
	if tc != nil {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: &http.Transport{Protocols: p, TLSClientConfig: tc, ForceAttemptHTTP2: true}}
}

// startFront starts an engine on loopback with listener options lo that
// sends every request to g.
func startFront(tb testing.TB, lo *ListenerOptions, g *upstream.Group) (string, *Server) {
	tb.Helper()
	return startFrontWith(tb, lo, g, nil)
}

// startFrontWith is startFront with adjust (if not nil) applied to the
// handler before the server starts.
func startFrontWith(tb testing.TB, lo *ListenerOptions, g *upstream.Group, adjust func(*Handler)) (string, *Server) {
	tb.Helper()
	r := &Route{Name: "all", Upstream: g}
	h := &Handler{Router: RouterFunc(func(*Session) *Route { return r }),
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if adjust != nil {
		adjust(h)
	}
	srv := NewServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.ServeListener(ln, lo)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		g.Close()
	})
	return ln.Addr().String(), srv
}

// group returns a round-robin group over addrs speaking proto.
func group(tb testing.TB, proto upstream.Proto, addrs ...string) *upstream.Group {
	peers := make([]*upstream.Peer, len(addrs))
	for i, a := range addrs {
		peers[i] = upstream.NewPeer(a, 1, i, upstream.PoolOptions{})
	}
	bal, err := upstream.NewBalancer("round_robin", peers)
	if err != nil {
		tb.Fatal(err)
	}
	g := &upstream.Group{Name: "test", Peers: peers, Balancer: bal, Retries: 1, Proto: proto,
		Timeouts: upstream.Timeouts{Connect: time.Second, ResponseHeader: 5 * time.Second, Idle: 5 * time.Second}}
	if proto == upstream.ProtoH2 {
		g.H2 = upstream.NewH2Transport(upstream.H2Options{})
	}
	return g
}

// echoOrigin answers with the protocol it saw and echoes the body.
func echoOrigin(tb testing.TB, h2c bool) string {
	tb.Helper()
	return serveOrigin(tb, h2c, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("Trailer", "X-Sum")
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Sum", fmt.Sprint(n))
	})
}

// serveOrigin serves h on loopback, HTTP/1.1 or (with h2c) also cleartext
// HTTP/2 with prior knowledge, and returns its address.
func serveOrigin(tb testing.TB, h2c bool, h http.HandlerFunc) string {
	tb.Helper()
	srv := &http.Server{Handler: h}
	if h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestH2OverTLSToHTTP1Origin(t *testing.T) {
	origin := echoOrigin(t, false)
	stls, ctls := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "weir.test")
	addr, _ := startFront(t, &ListenerOptions{TLS: stls}, group(t, upstream.ProtoHTTP1, origin))

	c := h2Client(ctls)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	resp, err := c.Post("https://"+addr+"/up", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(got, body) {
		t.Fatalf("proto %d, err %v, body %d bytes (want %d)", resp.ProtoMajor, err, len(got), len(body))
	}
	if p := resp.Header.Get("X-Proto"); p != "HTTP/1.1" {
		t.Errorf("origin saw %q, want HTTP/1.1", p)
	}
	if h := resp.Header.Get("X-Host"); h != addr {
		t.Errorf("origin saw Host %q, want %q", h, addr)
	}
	if s := resp.Trailer.Get("X-Sum"); s != fmt.Sprint(len(body)) {
		t.Errorf("trailer X-Sum = %q", s)
	}

	// The same listener still speaks HTTP/1.1 to clients that ask for it.
	c1tls := ctls.Clone()
	c1tls.NextProtos = []string{"http/1.1"}
	c1 := &http.Client{Transport: &http.Transport{TLSClientConfig: c1tls}}
	resp, err = c1.Get("https://" + addr + "/h1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 over TLS: %s %d", resp.Proto, resp.StatusCode)
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	origin := echoOrigin(t, false)
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	c := h2Client(nil)
	resp, err := c.Post("http://"+addr+"/x", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "hello" {
		t.Fatalf("h2c: %s %q", resp.Proto, b)
	}
	// HTTP/1.1 on the same port is unaffected.
	resp, err = http.Get("http://" + addr + "/y")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 next to h2c: %s %d", resp.Proto, resp.StatusCode)
	}
}

func TestHTTP1ClientToH2COrigin(t *testing.T) {
	origin := echoOrigin(t, true)
	addr, _ := startFront(t, nil, group(t, upstream.ProtoH2, origin))
	resp, err := http.Post("http://"+addr+"/x", "text/plain", strings.NewReader("over h2"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "over h2" || resp.Header.Get("X-Proto") != "HTTP/2.0" {
		t.Fatalf("body %q, origin proto %q", b, resp.Header.Get("X-Proto"))
	}
	if s := resp.Trailer.Get("X-Sum"); s != "7" {
		t.Errorf("trailer X-Sum = %q, want 7", s)
	}
	// Keep-alive holds across general-path requests.
	resp, err = http.Get("http://" + addr + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Many concurrent HTTP/2 client requests share few upstream HTTP/2
// connections.
func TestH2Multiplexing(t *testing.T) {
	origin := echoOrigin(t, true)
	g := group(t, upstream.ProtoH2, origin)
	stls, ctls := testcert.TLSPair(t, []string{"h2"}, "weir.test")
	addr, _ := startFront(t, &ListenerOptions{TLS: stls}, g)
	c := h2Client(ctls)
	// One request first: concurrent requests that find no connection at
	// all may each dial one; once one is up they share it.
	resp, err := c.Get("https://" + addr + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Post("https://"+addr+"/", "text/plain", strings.NewReader(fmt.Sprint(i)))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprint(i) {
				errs <- fmt.Errorf("request %d got %q", i, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d := g.H2.Dialed(); d < 1 || d > 3 {
		t.Fatalf("%d requests used %d upstream connections; want 1..3", n, d)
	}
	t.Logf("%d requests over %d upstream HTTP/2 connection(s)", n, g.H2.Dialed())
}

// h2Raw opens a raw HTTP/2 connection (h2c prior knowledge) and returns a
// framer on it after the client's SETTINGS (with settings, if any).
func h2Raw(tb testing.TB, addr string, settings ...http2.Setting) (net.Conn, *http2.Framer) {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		tb.Fatal(err)
	}
	fr := http2.NewFramer(nc, nc)
	if err := fr.WriteSettings(settings...); err != nil {
		tb.Fatal(err)
	}
	return nc, fr
}

// expectGoAway reads frames until GOAWAY or the connection closes.
func expectGoAway(t *testing.T, nc net.Conn, fr *http2.Framer) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Logf("connection closed: %v", err)
			return
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			t.Logf("GOAWAY %v", ga.ErrCode)
			return
		}
	}
}

func headerBlock(t testing.TB, extra ...string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "weir.test"}, {":path", "/"}} {
		e.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		e.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return b.Bytes()
}

// floodCase sends a flood on a raw connection; the connection must end
// in GOAWAY or a close while a well-behaved client keeps being served.
func floodCase(t *testing.T, flood func(fr *http2.Framer) error) {
	origin := echoOrigin(t, false)
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	nc, fr := h2Raw(t, addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		expectGoAway(t, nc, fr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := flood(fr); err != nil {
			break // the server closed the connection
		}
		select {
		case <-done:
			deadline = time.Time{}
		default:
		}
	}
	<-done
	// Others are still served.
	c := h2Client(nil)
	resp, err := c.Get("http://" + addr + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the flood: %d", resp.StatusCode)
	}
}

func TestH2FloodRapidReset(t *testing.T) {
	id := uint32(1)
	floodCase(t, func(fr *http2.Framer) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock(t), EndHeaders: true, EndStream: true}); err != nil {
			return err
		}
		err := fr.WriteRSTStream(id, http2.ErrCodeCancel)
		id += 2
		return err
	})
}

func TestH2FloodPing(t *testing.T) {
	floodCase(t, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) })
}

func TestH2FloodSettings(t *testing.T) {
	floodCase(t, func(fr *http2.Framer) error { return fr.WriteSettings() })
}

func TestH2FloodEmptyData(t *testing.T) {
	first := true
	floodCase(t, func(fr *http2.Framer) error {
		if first {
			first = false
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock(t), EndHeaders: true})
		}
		return fr.WriteData(1, false, nil)
	})
}

func TestH2FloodContinuation(t *testing.T) {
	first := true
	floodCase(t, func(fr *http2.Framer) error {
		if first {
			first = false
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock(t)})
		}
		return fr.WriteContinuation(1, false, headerBlock(t, "x-a", "b")[:1])
	})
}

func TestH2FloodHPACKBomb(t *testing.T) {
	// One 4 KiB field in the dynamic table, then streams that refer to
	// it over and over: tiny on the wire, huge once decoded.
	id := uint32(1)
	floodCase(t, func(fr *http2.Framer) error {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "weir.test"}, {":path", "/"}} {
			e.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		e.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("a", 4000)})
		block := b.Bytes()
		// 62 is the first dynamic table entry (RFC 7541 2.3.3).
		block = append(block, bytes.Repeat([]byte{0x80 | 62}, 60)...)
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: true})
		id += 2
		return err
	})
}

// echoTunnel accepts CONNECT to "ok.test:443" and echoes the tunnel's
// bytes; other targets are refused.
type echoTunnel struct{}

func (echoTunnel) Connect(s *Session, t *Tunnel) error {
	if string(s.Req.Authority) != "ok.test:443" {
		var hd message.Header
		hd.AddString("Proxy-Status", "weir; error=destination_ip_prohibited")
		return t.Refuse(403, &hd, []byte("no\n"))
	}
	c, err := t.Accept(nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(c, c)
	return err
}

// HTTP/2 CONNECT (RFC 9113 8.5) reaches the ConnectHandler, whose tunnel
// is the request's stream.
func TestH2Connect(t *testing.T) {
	origin := echoOrigin(t, false)
	addr, _ := startFrontWith(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin),
		func(h *Handler) { h.Connect = echoTunnel{} })
	c := h2Client(nil)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("CONNECT", "http://"+addr, pr)
	req.Host = "ok.test:443"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("CONNECT: %s %d", resp.Proto, resp.StatusCode)
	}
	for _, msg := range []string{"hello", "again"} {
		if _, err := io.WriteString(pw, msg); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != msg {
			t.Fatalf("echo %q, %v", b, err)
		}
	}
	pw.Close()
	resp.Body.Close()

	req, _ = http.NewRequest("CONNECT", "http://"+addr, nil)
	req.Host = "10.0.0.1:443"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Proxy-Status") == "" {
		t.Fatalf("refused CONNECT: %d %v", resp.StatusCode, resp.Header)
	}
}

// A :path or :authority that Weir's HTTP/1.1 parser would refuse is
// refused over HTTP/2 too (400), and never reaches the peer.
func TestH2InvalidPathAndAuthority(t *testing.T) {
	// The origin counts every request line it is sent, parseable or not.
	var hits atomic.Int32
	origin := testkit.TCP(t, 5*time.Second, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		t.Logf("origin got %q", line)
		hits.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	for i, tc := range [][3]string{
		{"/a b", "weir.test"},
		{"/a#frag", "weir.test"},
		{"/ok", "a b"},
		{"/ok", "a/b"},
		{"/ok", "a:99999"},
		{"/caf\xc3\xa9", "weir.test"},
		// A method is a token: one with a space would rewrite the
		// request line an HTTP/1.1 peer reads (its path, not :path).
		{"/public", "weir.test", "GET /admin"},
		{"/public", "weir.test", "G(T"},
	} {
		method := tc[2]
		if method == "" {
			method = "GET"
		}
		nc, fr := h2Raw(t, addr)
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for _, kv := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", tc[1]}, {":path", tc[0]}} {
			e.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		status := ""
		dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
			if f.Name == ":status" {
				status = f.Value
			}
		})
		for status == "" {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("case %d %q: %v", i, tc, err)
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				dec.Write(h.HeaderBlockFragment())
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok {
				status = "reset " + rst.ErrCode.String()
			}
		}
		if status != "400" && !strings.HasPrefix(status, "reset") {
			t.Errorf("method %q path %q authority %q: %s, want 400", method, tc[0], tc[1], status)
		}
		nc.Close()
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the origin got %d of these requests", n)
	}
}
