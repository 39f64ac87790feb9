package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/internal/testutil"
)

// proxyCertFiles writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths and a pool that trusts the certificate.
func proxyCertFiles(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, pool := testcert.SelfSigned(t, "127.0.0.1", "localhost")
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "proxy.key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, pool
}

// TestForwardProxyHTTPS: `weir forward-proxy --tls-cert --tls-key` is an
// HTTPS proxy for curl (absolute-form and CONNECT, with and without
// credentials) and for a Go HTTP/2 client tunnelling with HTTP/2
// CONNECT, while cleartext HTTP and SOCKS5 keep working on the port.
func TestForwardProxyHTTPS(t *testing.T) {
	t.Parallel()
	certPath, keyPath, pool := proxyCertFiles(t)
	o := remoteOrigin(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls origin %s %s", r.URL.Path, r.Proto)
	}))
	t.Cleanup(tlsOrigin.Close)
	tlsAddr := tlsOrigin.Listener.Addr().String()
	echo := testkit.Echo(t)
	ports := strconv.Itoa(int(portOf(t, tlsAddr))) + "," + strconv.Itoa(int(portOf(t, echo))) + "," + strconv.Itoa(int(portOf(t, o.addr())))
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--tls-cert", certPath, "--tls-key", keyPath,
			"--auth", "alice:wonderland", "--allow-private", "--connect-ports", ports, "--access-log", "stderr"}
	})
	proxyURL := "https://alice:wonderland@" + p.Addr
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"absolute-form over TLS", []string{"--proxy", proxyURL, "--proxy-cacert", certPath, "http://" + o.addr() + "/plain"}, "from 127.0.0.1 path /plain"},
		{"CONNECT over TLS", []string{"-k", "--proxy", proxyURL, "--proxy-cacert", certPath, "https://" + tlsAddr + "/secure"}, "tls origin /secure HTTP/1.1"},
		{"proxy-user", []string{"--proxy", "https://" + p.Addr, "--proxy-user", "alice:wonderland", "--proxy-cacert", certPath, "http://" + o.addr() + "/u"}, "from 127.0.0.1 path /u"},
		{"cleartext beside", []string{"-x", "http://alice:wonderland@" + p.Addr, "http://" + o.addr() + "/clear"}, "from 127.0.0.1 path /clear"},
		{"SOCKS5 beside", []string{"--socks5", "alice:wonderland@" + p.Addr, "http://" + o.addr() + "/socks"}, "from 127.0.0.1 path /socks"},
	} {
		out, errs, code := fwdCurl(t, tc.args...)
		if code != 0 || out != tc.want {
			t.Errorf("%s: exit %d, got %q, want %q; stderr: %s", tc.name, code, out, tc.want, errs)
		}
	}
	out, errs, code := fwdCurl(t, "-o", "/dev/null", "-w", "%{http_code}", "--proxy", "https://"+p.Addr, "--proxy-cacert", certPath, "http://"+o.addr()+"/")
	if code != 0 || out != "407" {
		t.Errorf("HTTPS proxy without credentials: exit %d, %q; %s", code, out, errs)
	}
	// The proxy's certificate is checked by curl: without the CA it fails.
	if _, _, code := fwdCurl(t, "--proxy", proxyURL, "http://"+o.addr()+"/"); code == 0 {
		t.Error("curl accepted the proxy's self-signed certificate without --proxy-cacert")
	}

	// A Go HTTP/2 client: CONNECT over an HTTP/2 stream to the echo server.
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{Protocols: &protos, TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	connect := func(cred bool) (*http.Response, *io.PipeWriter) {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodConnect, "https://"+p.Addr, pr)
		req.Host = echo
		if cred {
			req.SetBasicAuth("alice", "wonderland")
			req.Header["Proxy-Authorization"] = req.Header["Authorization"]
			delete(req.Header, "Authorization")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("HTTP/2 CONNECT: %v", err)
		}
		t.Cleanup(func() { pw.Close(); resp.Body.Close() })
		return resp, pw
	}
	if resp, _ := connect(false); resp.StatusCode != 407 || resp.ProtoMajor != 2 {
		t.Errorf("HTTP/2 CONNECT without credentials: %s %d", resp.Proto, resp.StatusCode)
	}
	resp, pw := connect(true)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 CONNECT: %s %d", resp.Proto, resp.StatusCode)
	}
	for _, msg := range []string{"over", "an HTTP/2 stream"} {
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
		t.Errorf("after END_STREAM: %q %v", rest, err)
	}
	testutil.WaitFor(t, 5*time.Second, "access lines for the HTTPS requests", func() bool {
		return strings.Count(p.Stderr.String(), "user=alice") >= 6
	})
}
