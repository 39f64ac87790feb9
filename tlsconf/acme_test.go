package tlsconf

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
)

const pebbleModule = "github.com/letsencrypt/pebble/v2"

// buildPebble returns the path of a Pebble ACME server binary: the one
// named by WEIR_PEBBLE, or one built from the Pebble version in Weir's
// module graph. It skips the test when neither is possible (no go tool,
// or the module cannot be fetched).
func buildPebble(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEIR_PEBBLE"); p != "" {
		return p
	}
	if testing.Short() {
		t.Skip("-short: not building the Pebble ACME server")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go tool to build the Pebble ACME server")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}}", pebbleModule).Output()
	if err != nil {
		t.Fatalf("Pebble is not in the module graph: %v", err)
	}
	version := strings.TrimSpace(string(out))
	bin := t.TempDir()
	cmd := exec.Command(goBin, "install", pebbleModule+"/cmd/pebble@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "GOWORK=off")
	cmd.Dir = bin
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build Pebble %s: %v\n%s", version, err, out)
	}
	return filepath.Join(bin, "pebble")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPebble runs Pebble on 127.0.0.1 with challenge validation turned
// off, and returns its directory URL and the file of the root its HTTPS
// certificate chains to.
func startPebble(t *testing.T) (dirURL, rootFile string, stop func()) {
	t.Helper()
	bin := buildPebble(t)
	dir := t.TempDir()
	c, k := selfSigned(t, "localhost", "127.0.0.1")
	certFile := writeFile(t, dir, "pebble.crt", c)
	keyFile := writeFile(t, dir, "pebble.key", k)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           addr,
		"managementListenAddress": "",
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                freePort(t),
		"tlsPort":                 freePort(t),
		"ocspResponderURL":        "",
	}}
	b, _ := json.Marshal(conf)
	cfgFile := writeFile(t, dir, "pebble.json", b)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_ALWAYS_VALID=1",
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
	)
	logs := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start Pebble: %v", err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		cmd.Wait()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("Pebble output:\n%s", logs.String())
		}
	})
	testkit.WaitFor(t, 30*time.Second, "Pebble to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return "https://" + addr + "/dir", certFile, stop
}

func TestACMEWithPebble(t *testing.T) {
	dirURL, root, stopPebble := startPebble(t)
	storage := t.TempDir()
	var mu sync.Mutex
	var events []string
	opts := ACMEOptions{
		Email:       "ops@weir.example.com",
		CA:          dirURL,
		CARoot:      root,
		Domains:     []string{"weir.example.com", "www.weir.example.com"},
		StorageDir:  storage,
		Agree:       true,
		HTTPPort:    freePort(t),
		TLSALPNPort: freePort(t),
		OnEvent: func(event string, _ map[string]any) {
			mu.Lock()
			events = append(events, event)
			mu.Unlock()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := NewACME(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	mu.Lock()
	if !slices.Contains(events, "cert_obtained") {
		t.Errorf("events %v, want cert_obtained", events)
	}
	mu.Unlock()
	if !slices.Contains(a.TLSConfig().NextProtos, "acme-tls/1") {
		t.Error("the ACME config does not offer acme-tls/1 for TLS-ALPN-01 renewals")
	}

	addr := serveTLS(t, a.TLSConfig())
	for _, sni := range []string{"weir.example.com", "www.weir.example.com", ""} {
		st, err := handshake(t, addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		leaf := st.PeerCertificates[0]
		want := sni
		if want == "" {
			want = "weir.example.com"
		}
		if !slices.Contains(leaf.DNSNames, want) {
			t.Errorf("SNI %q: served a certificate for %v", sni, leaf.DNSNames)
		}
		if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
			t.Errorf("SNI %q: issuer %q, want Pebble's", sni, leaf.Issuer.CommonName)
		}
		if st.NegotiatedProtocol != "http/1.1" {
			t.Errorf("negotiated %q", st.NegotiatedProtocol)
		}
	}
	// Requests that are not ACME challenges are left to the caller.
	rec := httptest.NewRecorder()
	if a.HandleHTTPChallenge(rec, httptest.NewRequest("GET", "http://weir.example.com/", nil)) {
		t.Error("HandleHTTPChallenge answered a plain request")
	}
	a.Close()

	// With the CA gone, a new instance serves the stored certificates.
	stopPebble()
	b, err := NewACME(ctx, opts)
	if err != nil {
		t.Fatalf("restart from storage without the CA: %v", err)
	}
	defer b.Close()
	st, err := handshake(t, serveTLS(t, b.TLSConfig()), &tls.Config{ServerName: "www.weir.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(st.PeerCertificates[0].DNSNames, "www.weir.example.com") {
		t.Errorf("after restart served %v", st.PeerCertificates[0].DNSNames)
	}
}

func TestACMEOptionErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		o    ACMEOptions
		want string
	}{
		{ACMEOptions{Agree: true, StorageDir: "x"}, "no domain"},
		{ACMEOptions{Domains: []string{"a.test"}, StorageDir: "x"}, "subscriber agreement"},
		{ACMEOptions{Domains: []string{"a.test"}, Agree: true}, "storage directory"},
		{ACMEOptions{Domains: []string{"a..test"}, Agree: true, StorageDir: "x"}, `domain "a..test"`},
		{ACMEOptions{Domains: []string{"a.test"}, Agree: true, StorageDir: "x", CARoot: "/nonexistent/root.pem"}, "cannot read"},
	} {
		_, err := NewACME(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.o, err, tc.want)
		}
	}
}
