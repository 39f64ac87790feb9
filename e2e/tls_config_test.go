package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/tlsconf"
)

// These tests start Weir from YAML with the tls, http2, http3 and
// grpc_web settings and upstream URLs other than http://, and check what
// real clients (curl, Go's HTTP/1.1 and HTTP/3 clients, the weir binary)
// get.

// tcCert writes a self-signed certificate for names (127.0.0.1 and
// localhost when none are given) and its key into dir as NAME.pem and
// NAME-key.pem, and returns their paths.
func tcCert(t testing.TB, dir, name string, names ...string) (cert, key string) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1"}
	}
	certPEM, keyPEM, err := tlsconf.SelfSigned(names...)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	tcWrite(t, cert, certPEM)
	tcWrite(t, key, keyPEM)
	return cert, key
}

// tcWrite replaces the file at path with data, atomically, as deploy
// tools do.
func tcWrite(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tcParse parses a whole configuration (listeners included) as the file
// weir.yaml in dir, so that relative file names resolve against dir, and
// moves every listener to a free loopback port. Unless the text sets
// them, the access log is off and the shutdown grace 5s.
func tcParse(t testing.TB, dir, text string) *config.Config {
	t.Helper()
	if !strings.Contains(text, "\nlog:") {
		text += "log:\n  access: \"off\"\n"
	}
	if !strings.Contains(text, "shutdown_grace:") {
		text += "shutdown_grace: 5s\n"
	}
	cfg, err := config.Parse(filepath.Join(dir, "weir.yaml"), []byte(text))
	if err != nil {
		t.Fatalf("configuration rejected:\n%v\n--- configuration ---\n%s", err, text)
	}
	for i := range cfg.Listeners {
		cfg.Listeners[i].Address = "127.0.0.1:0"
	}
	return cfg
}

// tcStart parses text with tcParse and serves it until the test ends.
// It returns Weir and the TCP address of each listener, in order.
func tcStart(t testing.TB, dir, text string) (*proxyUnderTest, []string) {
	t.Helper()
	p := startWeirConfig(t, tcParse(t, dir, text), weir.Options{})
	var addrs []string
	for _, a := range p.srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	return p, addrs
}

// protoOrigin answers every request with the protocol it arrived over
// and whether it was TLS: "HTTP/1.1 tls=false".
func protoOrigin(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
}

// curlVersion runs curl with args against url and returns the body, the
// status and the HTTP version curl used ("1.1", "2").
func curlVersion(t testing.TB, url string, args ...string) (body string, status, version string) {
	t.Helper()
	out, _ := curl(t, append(args, "-w", "\n%{http_code} %{http_version}", url)...)
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		t.Fatalf("curl %s: no status line in %q", url, s)
	}
	status, version, _ = strings.Cut(s[i+1:], " ")
	return s[:i], status, version
}

// TestTLSListener: a listener with tls serves HTTP/2 to clients that ask
// for it through ALPN and HTTP/1.1 to the others, with the certificate
// named relative to the configuration file; the origin gets HTTP/1.1 and
// learns that the client used https.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, _ := tcCert(t, dir, "site")
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto-Seen", r.Header.Get("X-Forwarded-Proto"))
		protoOrigin(w, r)
	}))
	_, addrs := tcStart(t, dir, `
listeners:
  - address: "127.0.0.1:8443"
    tls:
      certificates: [{cert: site.pem, key: site-key.pem}]
routes: [{upstream: app}]
upstreams:
  app: {peers: ["`+o.peer()+`"]}
`)
	url := "https://" + addrs[0] + "/"
	for _, tc := range []struct {
		flag, version string
	}{
		{"--http2", "2"},
		{"--http1.1", "1.1"},
	} {
		body, status, version := curlVersion(t, url, tc.flag, "--cacert", cert, "-D", "-")
		if status != "200" || version != tc.version {
			t.Errorf("curl %s: status %s over HTTP/%s, want 200 over HTTP/%s\n%s", tc.flag, status, version, tc.version, body)
		}
		if !strings.HasSuffix(body, "HTTP/1.1 tls=false") {
			t.Errorf("curl %s: origin answered %q, want HTTP/1.1 without TLS", tc.flag, body)
		}
		if !strings.Contains(strings.ToLower(body), "x-proto-seen: https") {
			t.Errorf("curl %s: the origin did not see X-Forwarded-Proto: https:\n%s", tc.flag, body)
		}
		if strings.Contains(strings.ToLower(body), "alt-svc") {
			t.Errorf("curl %s: Alt-Svc sent without http3:\n%s", tc.flag, body)
		}
	}

	// Without the CA, curl refuses the self-signed certificate: the
	// listener really serves TLS with the configured certificate.
	out, err := runCurl(t, "--http2", "-o", "/dev/null", url)
	if err == nil {
		t.Errorf("curl without --cacert succeeded: %s", out)
	}
}

// runCurl runs curl and returns its combined output and error, without
// failing the test.
func runCurl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(curlPath(t), append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestTLSListenerHTTP1Only: http2.enabled: false leaves HTTP/1.1 as the
// only protocol a TLS client can pick.
func TestTLSListenerHTTP1Only(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, _ := tcCert(t, dir, "site")
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	_, addrs := tcStart(t, dir, `
listeners:
  - address: "127.0.0.1:8443"
    tls:
      certificates: [{cert: site.pem, key: site-key.pem}]
    http2: {enabled: false}
routes: [{upstream: app}]
upstreams:
  app: {peers: ["`+o.peer()+`"]}
`)
	_, status, version := curlVersion(t, "https://"+addrs[0]+"/", "--http2", "--cacert", cert)
	if status != "200" || version != "1.1" {
		t.Errorf("curl --http2: status %s over HTTP/%s, want 200 over HTTP/1.1", status, version)
	}
}

// TestH2CListener: with http2.h2c a cleartext listener serves HTTP/2 to
// clients with prior knowledge, and HTTP/1.1 to the others on the same
// port.
func TestH2CListener(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	_, addrs := tcStart(t, t.TempDir(), `
listeners:
  - address: "127.0.0.1:8080"
    http2: {h2c: true, max_concurrent_streams: 16}
routes: [{upstream: app}]
upstreams:
  app: {peers: ["`+o.peer()+`"]}
`)
	url := "http://" + addrs[0] + "/"
	body, status, version := curlVersion(t, url, "--http2-prior-knowledge")
	if status != "200" || version != "2" || body != "HTTP/1.1 tls=false" {
		t.Errorf("curl --http2-prior-knowledge: status %s over HTTP/%s, body %q", status, version, body)
	}
	body, status, version = curlVersion(t, url, "--http1.1")
	if status != "200" || version != "1.1" || body != "HTTP/1.1 tls=false" {
		t.Errorf("curl --http1.1: status %s over HTTP/%s, body %q", status, version, body)
	}
}

// TestH2CUpstream: an h2c:// upstream is reached over cleartext HTTP/2
// with prior knowledge (the origin speaks nothing else) by a client that
// speaks HTTP/1.1 to Weir, and its connections are shared.
func TestH2CUpstream(t *testing.T) {
	t.Parallel()
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true) // and no HTTP/1.1
	srv := &http.Server{Handler: http.HandlerFunc(protoOrigin), Protocols: protos}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })

	p, addrs := tcStart(t, t.TempDir(), `
listeners:
  - address: "127.0.0.1:8080"
routes: [{upstream: grpc}]
upstreams:
  grpc:
    peers: ["h2c://`+ln.Addr().String()+`"]
`)
	c := newClient(t)
	for i := range 3 {
		status, body := get(t, c, "http://"+addrs[0]+"/")
		if status != 200 || body != "HTTP/2.0 tls=false" {
			t.Fatalf("request %d: status %d, body %q; want 200 from an HTTP/2 origin", i, status, body)
		}
	}
	if n := p.srv.Group("grpc").H2.Dialed(); n != 1 {
		t.Errorf("Weir opened %d HTTP/2 connections to the origin for 3 requests, want 1", n)
	}
}

// tlsOrigin starts an httptest TLS server (HTTP/2 too when h2) and
// writes its certificate, which is its own CA, into dir as NAME.pem.
func tlsOrigin(t testing.TB, dir, name string, h2 bool) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(protoOrigin))
	srv.EnableHTTP2 = h2
	// Weir's refused handshakes (in TestTLSUpstreams) are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(dir, name+".pem")
	tcWrite(t, ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return srv, ca
}

// TestTLSUpstreams: https:// and h2:// peers are reached over TLS with
// their certificates verified against tls.ca; without it, verification
// against the system roots fails and the client gets 502.
func TestTLSUpstreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h1, _ := tlsOrigin(t, dir, "h1-ca", false)
	h2, h2ca := tlsOrigin(t, dir, "h2-ca", true)
	h1addr, h2addr := h1.Listener.Addr().String(), h2.Listener.Addr().String()
	p, addrs := tcStart(t, dir, `
listeners:
  - address: "127.0.0.1:8080"
routes:
  - {match: {path_prefix: /h1/}, upstream: verified}
  - {match: {path_prefix: /h2/}, upstream: verified-h2}
  - {match: {path_prefix: /unverified/}, upstream: unverified}
upstreams:
  verified:
    peers: ["https://`+h1addr+`"]
    tls: {ca: h1-ca.pem}         # relative to the configuration file
  verified-h2:
    peers: ["h2://`+h2addr+`"]
    tls: {ca: "`+h2ca+`", min_version: "1.3"}
  unverified:
    peers: ["https://`+h1addr+`"]
    retries: 0
`)
	base := "http://" + addrs[0]
	c := newClient(t)
	if status, body := get(t, c, base+"/h1/"); status != 200 || body != "HTTP/1.1 tls=true" {
		t.Errorf("https:// peer: status %d, body %q; want 200 from HTTP/1.1 over TLS", status, body)
	}
	if status, body := get(t, c, base+"/h2/"); status != 200 || body != "HTTP/2.0 tls=true" {
		t.Errorf("h2:// peer: status %d, body %q; want 200 from HTTP/2 over TLS", status, body)
	}
	if status, body := get(t, c, base+"/unverified/"); status != 502 {
		t.Errorf("https:// peer with a certificate the system roots do not know: status %d, body %q; want 502", status, body)
	}
	waitFor(t, 5*time.Second, "the certificate error in Weir's log", func() bool {
		return strings.Contains(p.log.String(), "certificate")
	})
}

// TestHTTP3Listener: http3 serves HTTP/3 on the UDP port with the TCP
// listener's number, which TCP responses advertise in Alt-Svc.
func TestHTTP3Listener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, _ := tcCert(t, dir, "site")
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	p, addrs := tcStart(t, dir, `
listeners:
  - address: "127.0.0.1:8443"
    tls:
      certificates: [{cert: site.pem, key: site-key.pem}]
    http3: {enabled: true}
routes: [{upstream: app}]
upstreams:
  app: {peers: ["`+o.peer()+`"]}
`)
	udp := p.srv.PacketAddrs()[0]
	if udp == nil {
		t.Fatal("no UDP address for the HTTP/3 listener")
	}
	_, tcpPort, _ := net.SplitHostPort(addrs[0])
	_, udpPort, _ := net.SplitHostPort(udp.String())
	if tcpPort != udpPort {
		t.Errorf("HTTP/3 on UDP port %s, TCP on %s; want the same", udpPort, tcpPort)
	}

	body, status, _ := curlVersion(t, "https://"+addrs[0]+"/", "--http2", "--cacert", cert, "-D", "-")
	if want := `alt-svc: h3=":` + tcpPort + `"; ma=86400`; status != "200" || !strings.Contains(strings.ToLower(body), want) {
		t.Errorf("status %s; want 200 with %q:\n%s", status, want, body)
	}

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get("https://" + udp.String() + "/")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || string(b) != "HTTP/1.1 tls=false" {
		t.Errorf("HTTP/3: status %d over %s, body %q", resp.StatusCode, resp.Proto, b)
	}
}

// TestCertificateFileReplaced: a certificate replaced on disk is served
// on new connections without a restart or reload.
func TestCertificateFileReplaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tcCert(t, dir, "site", "first.test", "127.0.0.1")
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	_, addrs := tcStart(t, dir, `
listeners:
  - address: "127.0.0.1:8443"
    tls:
      certificates: [{cert: site.pem, key: site-key.pem}]
      reload_interval: 100ms
routes: [{upstream: app}]
upstreams:
  app: {peers: ["`+o.peer()+`"]}
`)
	served := func() string {
		// Only the certificate's name matters here, not whether it is
		// trusted.
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addrs[0], &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first.test" {
		t.Fatalf("served %q, want first.test", got)
	}
	tcCert(t, dir, "site", "second.test", "127.0.0.1")
	waitFor(t, 30*time.Second, "the replaced certificate to be served", func() bool {
		return served() == "second.test"
	})
}

// TestReloadKeepsListeners: a reload that changes a listener's tls,
// http2 or http3 settings fails and leaves Weir serving as before; one
// that changes only routes succeeds.
func TestReloadKeepsListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tcCert(t, dir, "site")
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	const head = `
listeners:
  - address: "127.0.0.1:8443"
    tls:
      certificates: [{cert: site.pem, key: site-key.pem}]
`
	const rest = `routes: [{upstream: app}]
upstreams:
  app: {peers: ["PEER"]}
`
	body := strings.ReplaceAll(rest, "PEER", o.peer())
	p, _ := tcStart(t, dir, head+body)
	for _, change := range []string{
		"      min_version: \"1.3\"\n",
		"    http2: {enabled: false}\n",
		"    http3: {enabled: true}\n",
	} {
		err := p.srv.Reload(tcParse(t, dir, head+change+body))
		if err == nil || !strings.Contains(err.Error(), "restart Weir to change listeners") {
			t.Errorf("reload adding %q: got %v, want the restart error", strings.TrimSpace(change), err)
		}
	}
	if err := p.srv.Reload(tcParse(t, dir, head+body+"  other: {peers: [\"http://127.0.0.1:1\"]}\n")); err != nil {
		t.Errorf("reload with the same listeners: %v", err)
	}
}

// TestReverseProxyCommandTLS: `weir reverse-proxy --tls-cert --tls-key`
// serves HTTP/2 and HTTP/1.1 over TLS, and bad flag combinations are
// refused with exit code 2 and a message naming the flags.
func TestReverseProxyCommandTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := tcCert(t, dir, "site")
	o := newOrigin(t, http.HandlerFunc(protoOrigin))
	proc := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "reverse-proxy", "--from", addr, "--to", o.peer(),
			"--tls-cert", cert, "--tls-key", key, "--access-log", "off"}
	})
	for _, tc := range []struct{ flag, version string }{{"--http2", "2"}, {"--http1.1", "1.1"}} {
		body, status, version := curlVersion(t, "https://"+proc.Addr+"/", tc.flag, "--cacert", cert)
		if status != "200" || version != tc.version || body != "HTTP/1.1 tls=false" {
			t.Errorf("curl %s: status %s over HTTP/%s, body %q", tc.flag, status, version, body)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", o.peer(), "--http3"}, "--http3 needs --tls-cert and --tls-key"},
		{[]string{"--to", o.peer(), "--h2c", "--tls-cert", cert, "--tls-key", key}, "--h2c is for listeners without TLS"},
		{[]string{"--to", o.peer(), "--to", "h2c://127.0.0.1:1"}, `--to "h2c://127.0.0.1:1" uses h2c://, but --to "` + o.peer() + `" uses http://`},
		{[]string{"--to", o.peer(), "--upstream-ca", cert}, "--upstream-ca applies to https:// and h2:// upstreams"},
		{[]string{"--to", o.peer(), "--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", key}, "cannot read tls certificate file"},
	} {
		args := append([]string{"reverse-proxy", "--from", "127.0.0.1:1"}, tc.args...)
		_, stderr, code := runWeir(t, args...)
		if code != 2 || !strings.Contains(stderr, "weir reverse-proxy: "+tc.want) {
			t.Errorf("weir %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(args, " "), code, stderr, tc.want)
		}
	}
}

// TestCheckCommandCertificateFiles: `weir check` reads the certificate
// files a configuration names, relative to the file, and reports a
// missing one at its line and column.
func TestCheckCommandCertificateFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tcCert(t, dir, "site")
	good := filepath.Join(dir, "good.yaml")
	tcWrite(t, good, []byte("listeners:\n  - address: \":8443\"\n    tls:\n      certificates:\n        - {cert: site.pem, key: site-key.pem}\n"))
	if stdout, stderr, code := runWeir(t, "check", "-c", good); code != 0 {
		t.Errorf("valid file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	tcWrite(t, bad, []byte("listeners:\n  - address: \":8443\"\n    tls:\n      certificates:\n        - {cert: gone.pem, key: site-key.pem}\n"))
	_, stderr, code := runWeir(t, "check", "-c", bad)
	want := fmt.Sprintf("%s:5:18: cannot read tls certificate file \"gone.pem\" (%s): no such file or directory\n", bad, filepath.Join(dir, "gone.pem"))
	if code != 1 || stderr != want {
		t.Errorf("missing certificate: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
}

// TestGRPCWebRoute: a route with grpc_web turns a browser's gRPC-Web
// request into gRPC for an h2c:// peer, and the peer's trailers into the
// final gRPC-Web frame; a route without it passes the request unchanged.
func TestGRPCWebRoute(t *testing.T) {
	t.Parallel()
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc+proto")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Header().Set("X-Seen-Content-Type", r.Header.Get("Content-Type"))
		_, _ = w.Write(msg) // echo the request's message frame
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })

	_, addrs := tcStart(t, t.TempDir(), `
listeners:
  - address: "127.0.0.1:8080"
routes:
  - {match: {path_prefix: /web/}, upstream: grpc, grpc_web: true}
  - {upstream: grpc}
upstreams:
  grpc:
    peers: ["h2c://`+ln.Addr().String()+`"]
`)
	frame := []byte{0, 0, 0, 0, 3, 'a', 'b', 'c'} // uncompressed, 3 bytes
	post := func(path string) (*http.Response, []byte) {
		req, err := http.NewRequest("POST", "http://"+addrs[0]+path, strings.NewReader(string(frame)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc-web+proto")
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, body := post("/web/shop.Cart/Get")
	if got := resp.Header.Get("X-Seen-Content-Type"); got != "application/grpc+proto" {
		t.Errorf("the peer saw Content-Type %q, want application/grpc+proto", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/grpc-web+proto" {
		t.Errorf("the client got Content-Type %q, want application/grpc-web+proto", got)
	}
	if !strings.HasPrefix(string(body), string(frame)) {
		t.Fatalf("body %q does not start with the echoed message frame", body)
	}
	rest := body[len(frame):]
	if len(rest) < 5 || rest[0] != 0x80 {
		t.Fatalf("after the message: %q; want a trailer frame (flag 0x80)", rest)
	}
	if tr := strings.ToLower(string(rest[5:])); !strings.Contains(tr, "grpc-status: 0\r\n") || !strings.Contains(tr, "grpc-message: ok\r\n") {
		t.Errorf("trailer frame %q lacks grpc-status: 0 and grpc-message: ok", rest[5:])
	}

	resp, _ = post("/plain/")
	if got := resp.Header.Get("X-Seen-Content-Type"); got != "application/grpc-web+proto" {
		t.Errorf("without grpc_web the peer saw Content-Type %q, want the client's application/grpc-web+proto", got)
	}
}
