package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/forward"
	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/proxyauth"
)

// forwardPlaceholder is the address forward proxies are parsed with;
// forwardConfig swaps in 127.0.0.1:0, as testutil.ParseConfig does for
// listeners.
const forwardPlaceholder = "127.0.0.1:3128"

// forwardConfig parses a configuration body (see parseConfig) whose
// forward proxies listen on forwardPlaceholder, and moves them to free
// loopback ports.
func forwardConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	cfg := parseConfig(t, body)
	for i := range cfg.ForwardProxies {
		cfg.ForwardProxies[i].Address = "127.0.0.1:0"
	}
	return cfg
}

// usersFile writes a users file with one user, its password hashed by
// proxyauth.HashPassword, and returns its path.
func usersFile(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := proxyauth.HashPassword(pass)
	if err != nil {
		t.Fatal(err)
	}
	return writeUsers(t, user+":"+h+"\n")
}

// cheapUsersFile is usersFile with bcrypt's lowest cost, for tests that
// check passwords many times (the cost only slows them down).
func cheapUsersFile(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return writeUsers(t, user+":"+string(h)+"\n")
}

// writeUsers writes a users file in a new temporary directory.
func writeUsers(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// forwardBody is a configuration body with one route to the origin at
// originAddr and one forward proxy for the users in users, allowed to
// reach the origin by plain requests and tunnels.
func forwardBody(originAddr, users string) string {
	_, port, _ := net.SplitHostPort(originAddr)
	return testutil.OneRoute(originAddr, "", `
forward_proxies:
  - name: egress
    address: "`+forwardPlaceholder+`"
    users_file: "`+users+`"
    policy:
      allow_private: true
      connect_ports: [`+port+`]
`)
}

// TestForwardConfig runs a reverse proxy listener and a forward proxy
// from one configuration, and uses the forward proxy with curl over HTTP
// and SOCKS5.
func TestForwardConfig(t *testing.T) {
	o := namedOrigin(t, "origin")
	access := &syncBuffer{}
	cfg := forwardConfig(t, forwardBody(o.addr(), usersFile(t, "alice", "s3cret")))
	w := testutil.StartWeirConfig(t, cfg, weir.Options{AccessLog: access})
	fwd := w.Srv.ForwardAddrs()[0].String()
	target := "http://" + o.addr() + "/page"

	t.Run("reverse proxy", func(t *testing.T) {
		if code, body := get(t, newClient(t), w.URL("/")); code != 200 || body != "origin" {
			t.Fatalf("listener: %d %q, want 200 \"origin\"", code, body)
		}
	})
	t.Run("http with credentials", func(t *testing.T) {
		out, _ := curl(t, "-x", "http://alice:s3cret@"+fwd, target)
		if string(out) != "origin" {
			t.Fatalf("curl -x: got %q, want \"origin\"", out)
		}
	})
	t.Run("http without credentials", func(t *testing.T) {
		out, _ := curl(t, "-x", "http://"+fwd, "-o", os.DevNull, "-w", "%{http_code}", target)
		if string(out) != "407" {
			t.Fatalf("curl -x without credentials: status %s, want 407", out)
		}
	})
	t.Run("http wrong password", func(t *testing.T) {
		out, _ := curl(t, "-x", "http://alice:wrong@"+fwd, "-o", os.DevNull, "-w", "%{http_code}", target)
		if string(out) != "407" {
			t.Fatalf("curl -x with a wrong password: status %s, want 407", out)
		}
	})
	t.Run("socks5", func(t *testing.T) {
		out, _ := curl(t, "--socks5", fwd, "--proxy-user", "alice:s3cret", target)
		if string(out) != "origin" {
			t.Fatalf("curl --socks5: got %q, want \"origin\"", out)
		}
	})
	t.Run("socks5 without credentials", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := exec.CommandContext(ctx, curlPath(t), "-sS", "--max-time", "20", "--socks5", fwd, target).Run()
		if err == nil {
			t.Fatal("curl --socks5 without credentials succeeded")
		}
	})
	t.Run("access log", func(t *testing.T) {
		waitFor(t, 10*time.Second, "access lines for the forward proxy", func() bool {
			s := access.String()
			return strings.Contains(s, "proto=http ") && strings.Contains(s, "proto=socks5 ") && strings.Contains(s, "user=alice")
		})
	})
}

// TestForwardConfigReload: a reload that changes a forward proxy fails
// and says to restart; one that changes only routes succeeds, and the
// forward proxy keeps serving.
func TestForwardConfigReload(t *testing.T) {
	o := namedOrigin(t, "origin")
	users := cheapUsersFile(t, "alice", "s3cret")
	w := testutil.StartWeirConfig(t, forwardConfig(t, forwardBody(o.addr(), users)), weir.Options{})
	fwd := w.Srv.ForwardAddrs()[0].String()

	changed := forwardConfig(t, forwardBody(o.addr(), users)+"    udp: true\n")
	err := w.Srv.Reload(changed)
	if err == nil || !strings.Contains(err.Error(), "forward_proxies changed; restart Weir") {
		t.Fatalf("reload with a changed forward proxy: %v, want an error asking for a restart", err)
	}

	same := forwardConfig(t, forwardBody(o.addr(), users)+"proxy: {via: false}\n")
	if err := w.Srv.Reload(same); err != nil {
		t.Fatalf("reload with the same forward proxy: %v", err)
	}
	out, _ := curl(t, "-x", "http://alice:s3cret@"+fwd, "http://"+o.addr()+"/")
	if string(out) != "origin" {
		t.Fatalf("after the reload: got %q, want \"origin\"", out)
	}
}

// TestForwardConfigUsersFileReload: a new users file is read without a
// reload of the configuration.
func TestForwardConfigUsersFileReload(t *testing.T) {
	o := namedOrigin(t, "origin")
	users := cheapUsersFile(t, "alice", "s3cret")
	w := testutil.StartWeirConfig(t, forwardConfig(t, forwardBody(o.addr(), users)), weir.Options{})
	fwd := w.Srv.ForwardAddrs()[0].String()
	status := func(cred string) string {
		out, _ := curl(t, "-x", "http://"+cred+"@"+fwd, "-o", os.DevNull, "-w", "%{http_code}", "http://"+o.addr()+"/")
		return string(out)
	}
	if got := status("bob:hunter2"); got != "407" {
		t.Fatalf("bob before the users file changed: %s, want 407", got)
	}
	// Replace the file atomically, as the documentation asks.
	next := cheapUsersFile(t, "bob", "hunter2")
	if err := os.Rename(next, users); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the users file to be read again", func() bool {
		return strings.Contains(w.Log.String(), "users file reloaded")
	})
	if got := status("bob:hunter2"); got != "200" {
		t.Fatalf("bob after the users file changed: %s, want 200", got)
	}
}

// TestForwardConfigOnly: a configuration may hold forward proxies and no
// listener; Weir serves them and drains on shutdown.
func TestForwardConfigOnly(t *testing.T) {
	o := namedOrigin(t, "origin")
	cfg, err := config.Parse("test.yaml", []byte("forward_proxies:\n  - {address: \""+forwardPlaceholder+"\", policy: {allow_private: true}}\nlog: {access: \"off\"}\nshutdown_grace: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ForwardProxies[0].Address = "127.0.0.1:0"
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weir log:\n%s", log.String())
		}
	})
	srv, err := weir.New(cfg, weir.Options{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	fwd := srv.ForwardAddrs()[0].String()

	out, _ := curl(t, "-x", "http://"+fwd, "http://"+o.addr()+"/")
	if string(out) != "origin" {
		t.Fatalf("curl -x: got %q, want \"origin\"", out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if c, err := net.DialTimeout("tcp", fwd, time.Second); err == nil {
		c.Close()
		t.Fatal("the forward proxy still accepts connections after shutdown")
	}
}

// TestForwardConfigCheck: weir check refuses an open proxy, naming both
// fixes, and accepts the example configuration.
func TestForwardConfigCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte("forward_proxies:\n  - address: \":3128\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(weirBin, "check", "-c", file).CombinedOutput()
	if err == nil {
		t.Fatalf("weir check accepted an open proxy:\n%s", out)
	}
	want := file + `:2:14: forward proxy "forward-1" on ":3128" would be an open proxy, usable by anyone who can reach it: add users_file, or set allow_open: true`
	if !strings.Contains(string(out), want) {
		t.Fatalf("weir check:\n%s\nwant it to contain:\n%s", out, want)
	}
	example := filepath.Join("..", "examples", "forward.yaml")
	if out, err := exec.Command(weirBin, "check", "-c", example).CombinedOutput(); err != nil {
		t.Fatalf("weir check %s: %v\n%s", example, err, out)
	}
}

// TestForwardConfigDefaults: the defaults package config documents for
// forward proxies are package forward's.
func TestForwardConfigDefaults(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"handshake", config.DefaultForwardHandshakeTimeout, forward.DefaultHandshakeTimeout},
		{"tunnel_idle", config.DefaultForwardTunnelIdleTimeout, forward.DefaultTunnelIdleTimeout},
		{"max_destinations", config.DefaultForwardMaxDestinations, forward.DefaultMaxDestinations},
		{"max_idle", config.DefaultForwardMaxIdle, forward.DefaultMaxIdlePerDestination},
		{"keepalive.idle_timeout", config.DefaultForwardDestinationIdle, forward.DefaultDestinationIdle},
	} {
		if c.got != c.want {
			t.Errorf("%s: config's default %v, forward's %v", c.name, c.got, c.want)
		}
	}
	if config.DefaultForwardConnectPort != egress.DefaultConnectPort {
		t.Errorf("connect_ports: config's default %d, egress's %d", config.DefaultForwardConnectPort, egress.DefaultConnectPort)
	}
}

// TestForwardConfigTLSAndUserLimits: with tls, the forward port is also
// an HTTPS proxy, cleartext HTTP still works beside it, and
// user_limits.max_conns refuses a user's second use at once with 429.
func TestForwardConfigTLSAndUserLimits(t *testing.T) {
	o := namedOrigin(t, "origin")
	dir := t.TempDir()
	certPEM, keyPEM, _ := testcert.SelfSigned(t, "127.0.0.1")
	cert, key := filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "proxy-key.pem")
	for path, data := range map[string][]byte{cert: certPEM, key: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := forwardBody(o.addr(), cheapUsersFile(t, "alice", "s3cret")) +
		"    tls: {certificates: [{cert: \"" + cert + "\", key: \"" + key + "\"}]}\n" +
		"    user_limits: {max_conns: 1}\n"
	w := testutil.StartWeirConfig(t, forwardConfig(t, body), weir.Options{})
	fwd := w.Srv.ForwardAddrs()[0].String()
	target := "http://" + o.addr() + "/"

	out, _ := curl(t, "--proxy", "https://"+fwd, "--proxy-cacert", cert, "--proxy-user", "alice:s3cret", target)
	if string(out) != "origin" {
		t.Fatalf("curl --proxy https://: got %q, want \"origin\"", out)
	}
	out, _ = curl(t, "-x", "http://alice:s3cret@"+fwd, target)
	if string(out) != "origin" {
		t.Fatalf("curl -x http:// on the TLS port: got %q, want \"origin\"", out)
	}

	// A tunnel held open is alice's one use; a request beside it is one
	// too many.
	c := dial(t, fwd)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if _, err := io.WriteString(c, "CONNECT "+o.addr()+" HTTP/1.1\r\nHost: "+o.addr()+"\r\nProxy-Authorization: "+auth+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	out, _ = curl(t, "-x", "http://alice:s3cret@"+fwd, "-o", os.DevNull, "-w", "%{http_code}", target)
	if string(out) != "429" {
		t.Fatalf("a second use beside an open tunnel: status %s, want 429", out)
	}
	c.Close()
	waitFor(t, 10*time.Second, "alice's tunnel to end", func() bool {
		out, _ := curl(t, "-x", "http://alice:s3cret@"+fwd, "-o", os.DevNull, "-w", "%{http_code}", target)
		return string(out) == "200"
	})
}
