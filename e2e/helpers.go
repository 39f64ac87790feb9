// Package e2e is Weir's end-to-end test suite: every test starts real
// origins and a real Weir on 127.0.0.1 and talks to it with real clients
// (curl, Go's net/http, raw sockets, a WebSocket client, the weir binary).
// This file holds the shared helpers; the tests live in *_test.go.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for concurrent use: Weir's logs and
// access lines are written from its own goroutines.
type syncBuffer = testutil.SyncBuffer

// waitFor polls cond until it holds or timeout passes, and fails the test
// in the second case.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// parseConfig parses a configuration body with the test defaults (a
// loopback listener on a free port, a 5s shutdown grace, no access log
// unless the body or weir.Options ask for one): see testutil.ParseConfig.
func parseConfig(t testing.TB, body string) *config.Config {
	t.Helper()
	return testutil.ParseConfig(t, body)
}

// proxyUnderTest is a Weir served in-process.
type proxyUnderTest struct {
	srv  *weir.Server
	addr string // host:port of the listener
	log  *syncBuffer
}

// url returns the proxy's base URL followed by path.
func (p *proxyUnderTest) url(path string) string { return "http://" + p.addr + path }

// startWeir compiles the configuration body (see parseConfig), listens and
// serves until the test ends. Weir's own log is kept and printed if the test
// fails. Unless opts or the configuration say otherwise, access lines are
// discarded.
func startWeir(t testing.TB, body string, opts weir.Options) *proxyUnderTest {
	t.Helper()
	return startWeirConfig(t, parseConfig(t, body), opts)
}

func startWeirConfig(t testing.TB, cfg *config.Config, opts weir.Options) *proxyUnderTest {
	t.Helper()
	w := testutil.StartWeirConfig(t, cfg, opts)
	return &proxyUnderTest{srv: w.Srv, addr: w.Addr, log: w.Log}
}

// origin is an httptest server that counts the connections it accepted
// and closed, and the requests it served.
type origin struct {
	*httptest.Server
	accepts  atomic.Int64
	closes   atomic.Int64
	requests atomic.Int64
}

// newOrigin starts an origin serving h; it is closed when the test ends.
func newOrigin(t testing.TB, h http.Handler) *origin {
	t.Helper()
	return newOriginWith(t, h, nil)
}

// newOriginWith is newOrigin with a chance to configure the server (its
// timeouts, say) before it starts.
func newOriginWith(t testing.TB, h http.Handler, configure func(*http.Server)) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	o.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			o.accepts.Add(1)
		case http.StateClosed, http.StateHijacked:
			o.closes.Add(1)
		}
	}
	if configure != nil {
		configure(o.Config)
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// namedOrigin answers every request with its name as the body and in
// the X-Origin header.
func namedOrigin(t testing.TB, name string) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Origin", name)
		_, _ = io.WriteString(w, name)
	}))
}

// peer is the origin's address as a configuration peer.
func (o *origin) peer() string { return "http://" + o.Listener.Addr().String() }

// addr is the origin's host:port.
func (o *origin) addr() string { return o.Listener.Addr().String() }

// newClient returns a Go HTTP client with its own connection pool.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// get sends a GET and returns the status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// dial opens a raw connection, closed when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	return testutil.Dial(t, addr)
}

// readUntilClose reads everything the peer sends until it closes the
// connection. It fails the test if the connection is still open after
// timeout.
func readUntilClose(t testing.TB, c net.Conn, timeout time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v; received %q", timeout, clip(out))
		}
		// io.EOF is the clean close; a reset after the response was read
		// is a close too.
		return out
	}
}

// readResponse reads one response from br.
func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading %s response: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading %s response body: %v", method, err)
	}
	return resp, string(body)
}

// clip shortens b for messages.
func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// curlPath returns the curl binary or fails the test.
func curlPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl not found: the e2e suite drives curl as a real client (apt-get install curl)")
	}
	return p
}

// curl runs curl with args (-sS added) and returns its stdout and stderr.
// A non-zero exit fails the test.
func curl(t testing.TB, args ...string) (stdout []byte, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curlPath(t), append([]string{"-sS", "--max-time", "50"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), errb.String()
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sha returns the hex SHA-256 of b.
func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// shaFile returns the hex SHA-256 of a file's content.
func shaFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
