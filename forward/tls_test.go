package forward

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/internal/testkit"
)

// proxyTLS returns the proxy's TLS configuration (a certificate for
// 127.0.0.1, no ALPN: the Server sets h2 and http/1.1) and a pool that
// trusts it.
func proxyTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, pool := testcert.SelfSigned(t, "127.0.0.1", "localhost")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, pool
}

// h2Client is an HTTP/2-only client of the proxy's TLS port.
func h2Client(t testing.TB, roots *x509.CertPool) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetHTTP2(true)
	tr := &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// h2Connect opens an HTTP/2 CONNECT stream to target through the proxy.
// The returned writer feeds the tunnel; the response body reads it.
func h2Connect(t testing.TB, c *http.Client, proxyAddr, target string, hdr http.Header) (*http.Response, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodConnect, "https://"+proxyAddr, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = target
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		pw.Close()
		t.Fatalf("HTTP/2 CONNECT %s: %v", target, err)
	}
	t.Cleanup(func() {
		pw.Close()
		resp.Body.Close()
	})
	return resp, pw
}

// TestHTTPSProxyPort: with TLS, the port also serves HTTPS proxying
// (HTTP/1.1 in TLS for plain requests and CONNECT, HTTP/2 CONNECT
// streams) with the same authentication, while SOCKS5 and cleartext
// HTTP keep working on it.
func TestHTTPSProxyPort(t *testing.T) {
	echo := testkit.Echo(t)
	origin := newEchoOrigin(t, false)
	tlsOrigin := newEchoOrigin(t, true)
	srvTLS, roots := proxyTLS(t)
	roots.AddCert(tlsOrigin.Certificate())
	p := startProxy(t, Options{
		TLS:  srvTLS,
		Auth: usersFile(t, "alice:wonderland"),
		Policy: egress.PolicyConfig{AllowPrivate: true,
			ConnectPorts: []uint16{portOf(t, echo), tlsOrigin.port()}},
	})
	cred := http.Header{"Proxy-Authorization": {"Basic " + b64("alice:wonderland")}}

	// HTTP/2 CONNECT: without credentials 407, with them a tunnel whose
	// half close reaches the destination and comes back.
	c := h2Client(t, roots)
	resp, _ := h2Connect(t, c, p.addr, echo, nil)
	if resp.StatusCode != 407 || resp.ProtoMajor != 2 || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("HTTP/2 CONNECT without credentials: %s %d %v", resp.Proto, resp.StatusCode, resp.Header)
	}
	resp, pw := h2Connect(t, c, p.addr, echo, cred)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 CONNECT: %s %d", resp.Proto, resp.StatusCode)
	}
	for _, msg := range []string{"hello", "through an HTTP/2 stream"} {
		if _, err := io.WriteString(pw, msg); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != msg {
			t.Fatalf("echo %q: %q %v", msg, b, err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the client's END_STREAM: %q %v, want the end of the stream", rest, err)
	}
	// A refused destination is answered on the stream, with Proxy-Status.
	resp, _ = h2Connect(t, c, p.addr, "127.0.0.1:1", cred)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Proxy-Status"), "destination_ip_prohibited") {
		t.Fatalf("HTTP/2 CONNECT to a refused port: %d %v", resp.StatusCode, resp.Header)
	}

	// Over HTTP/2 a request for a path is not a proxy request.
	req, _ := http.NewRequest(http.MethodGet, "https://"+p.addr+"/", nil)
	req.Header["Proxy-Authorization"] = cred["Proxy-Authorization"]
	if r, err := c.Do(req); err != nil || r.StatusCode != 400 || r.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 GET for a path: %v %v, want 400", r, err)
	} else {
		r.Body.Close()
	}

	// HTTP/1.1 inside TLS: plain requests and CONNECT (TLS in TLS).
	pu := &url.URL{Scheme: "https", Host: p.addr, User: url.UserPassword("alice", "wonderland")}
	tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, u := range []string{"http://" + origin.hostport() + "/plain", "https://" + tlsOrigin.hostport() + "/tunnelled"} {
		r, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s through the HTTPS proxy: %v", u, err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from 127.0.0.1") {
			t.Errorf("GET %s through the HTTPS proxy: %d %q", u, r.StatusCode, body)
		}
	}
	tr.Proxy = http.ProxyURL(&url.URL{Scheme: "https", Host: p.addr})
	tr.CloseIdleConnections()
	if r, err := hc.Get("http://" + origin.hostport() + "/"); err != nil || r.StatusCode != 407 {
		t.Errorf("HTTPS proxy without credentials: %v %v", r, err)
	} else {
		r.Body.Close()
	}

	// Cleartext HTTP and SOCKS5 on the same port.
	resp2, body := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/clear HTTP/1.1\r\nHost: "+origin.hostport()+"\r\n"+basic("alice", "wonderland")+"Connection: close\r\n\r\n")
	if resp2.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
		t.Errorf("cleartext HTTP beside TLS: %d %q", resp2.StatusCode, body)
	}
	sc, err := socksDial(t, p.addr, echo, "alice", "wonderland")
	if err != nil {
		t.Fatalf("SOCKS5 beside TLS: %v", err)
	}
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(sc, "socks")
	b := make([]byte, 5)
	if _, err := io.ReadFull(sc, b); err != nil || string(b) != "socks" {
		t.Errorf("SOCKS5 echo: %q %v", b, err)
	}
	sc.Close()

	testkit.WaitFor(t, 5*time.Second, "alice's counters", func() bool {
		u := p.Usage()["alice"]
		return u.Tunnels >= 3 && u.Requests >= 2
	})
	if !strings.Contains(p.acc.String(), "proto=connect") {
		t.Errorf("no CONNECT access line:\n%s", p.acc.String())
	}
}

// TestTLSNotConfigured: without TLS, a ClientHello is closed without an
// answer, as before.
func TestTLSNotConfigured(t *testing.T) {
	p := startProxy(t, Options{})
	c := dial(t, p.addr)
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("a TLS handshake succeeded on a proxy without TLS")
	}
}

// TestHTTPSProxyHTTP11Connect: a raw CONNECT inside TLS gets the usual
// HTTP/1.1 answer and a tunnel.
func TestHTTPSProxyHTTP11Connect(t *testing.T) {
	echo := testkit.Echo(t)
	srvTLS, roots := proxyTLS(t)
	p := startProxy(t, Options{TLS: srvTLS, Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, echo)}}})
	tc, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(tc, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly", echo, echo)
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT over TLS: %v %v", resp, err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "early" {
		t.Fatalf("bytes sent with the request head: %q %v", b, err)
	}
	if tc.ConnectionState().NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", tc.ConnectionState().NegotiatedProtocol)
	}
}

func portOf(t testing.TB, hostport string) uint16 {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(a.Port)
}
