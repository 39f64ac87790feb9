package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/proxyauth"
	"github.com/weirproxy/weir/socks5"
)

// testProxy is a forward.Server serving on a loopback port for one test.
type testProxy struct {
	*Server
	addr  string
	dials atomic.Int64 // outbound sockets the proxy tried to connect
	log   *testkit.SyncBuffer
	acc   *testkit.SyncBuffer
}

// startProxy starts a server with o on 127.0.0.1 and stops it when the test
// ends. Outbound connection attempts are counted.
func startProxy(t testing.TB, o Options) *testProxy {
	t.Helper()
	p := &testProxy{log: &testkit.SyncBuffer{}, acc: &testkit.SyncBuffer{}}
	if o.Listener == nil && o.Listen == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Listener = ln
	}
	o.Logger = slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.AccessLog = slog.New(slog.NewTextHandler(p.acc, nil))
	inner := o.DialControl
	o.DialControl = func(network, address string, c syscall.RawConn) error {
		p.dials.Add(1)
		if inner != nil {
			return inner(network, address, c)
		}
		return nil
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	p.Server = srv
	p.addr = srv.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s\naccess log:\n%s", clip([]byte(p.log.String())), clip([]byte(p.acc.String())))
		}
	})
	return p
}

// fakeResolver answers from a fixed table, so that no test asks real DNS.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, host string) ([]netip.Addr, error) {
	if a, ok := r[strings.ToLower(strings.TrimSuffix(host, "."))]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var testResolver = fakeResolver{
	"localhost":       {netip.MustParseAddr("127.0.0.1")},
	"origin.test":     {netip.MustParseAddr("127.0.0.1")},
	"metadata.test":   {netip.MustParseAddr("169.254.169.254")},
	"private.test":    {netip.MustParseAddr("10.0.0.1")},
	"mixed.test":      {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")},
	"nowhere.invalid": nil,
}

// echoOrigin answers every request with the client address it saw and a
// few request details.
type echoOrigin struct {
	*httptest.Server
	accepts atomic.Int64
}

func newEchoOrigin(t testing.TB, useTLS bool) *echoOrigin {
	t.Helper()
	o := &echoOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("X-Remote-IP", host)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-URI", r.RequestURI)
		w.Header().Set("X-Proxy-Authorization", r.Header.Get("Proxy-Authorization"))
		w.Header().Set("X-Forwarded-For-Seen", r.Header.Get("X-Forwarded-For"))
		fmt.Fprintf(w, "hello from %s body=%q", host, body)
	}))
	o.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			o.accepts.Add(1)
		}
	}
	if useTLS {
		o.StartTLS()
	} else {
		o.Start()
	}
	t.Cleanup(o.Close)
	return o
}

func (o *echoOrigin) port() uint16 {
	return o.Listener.Addr().(*net.TCPAddr).AddrPort().Port()
}

func (o *echoOrigin) hostport() string { return o.Listener.Addr().String() }

// proxyClient is an HTTP client that goes through the proxy, with user
// and pass as its credentials when user is not empty.
func proxyClient(t testing.TB, proxyAddr, user, pass string, rootTLS *tls.Config) *http.Client {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: proxyAddr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: rootTLS, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// rawRequest sends one raw request on a new connection and reads the
// response head and body.
func rawRequest(t testing.TB, proxyAddr, req string) (*http.Response, string) {
	t.Helper()
	c := dial(t, proxyAddr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", firstLine(req), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// basic returns a Proxy-Authorization field line.
func basic(user, pass string) string {
	return "Proxy-Authorization: Basic " + b64(user+":"+pass) + "\r\n"
}

// usersFile writes a users file with a cheap bcrypt cost (the cost only
// slows the tests) and loads it.
func usersFile(t testing.TB, creds ...string) *proxyauth.Users {
	t.Helper()
	var b strings.Builder
	for _, c := range creds {
		user, pass, _ := strings.Cut(c, ":")
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", user, h)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := proxyauth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// socksDial opens a SOCKS5 CONNECT tunnel to target through the proxy.
func socksDial(t testing.TB, proxyAddr, target, user, pass string) (net.Conn, error) {
	t.Helper()
	c := dial(t, proxyAddr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := socks5.ClientHandshake(c, target, user, pass); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// getOver sends a GET for path over an open tunnel conn (plain HTTP) and
// returns the response.
func getOver(t testing.TB, c net.Conn, host, path string) (*http.Response, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET over the tunnel: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// udpEcho is a UDP server on 127.0.0.1 that sends every datagram back.
func udpEcho(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
