// Package testutil holds what Weir's socket-level test suites share: an
// in-process Weir on a loopback port, the weir binary built once, a raw
// recording origin, and small waiting and reading helpers. It is imported
// only by tests.
package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/internal/testkit"
)

// SyncBuffer, WaitFor and Eventually are package testkit's, here so that
// the suites that start whole Weirs find every helper in one place.
type SyncBuffer = testkit.SyncBuffer

var (
	WaitFor    = testkit.WaitFor
	Eventually = testkit.Eventually
)

// ListenerPlaceholder is the address test configurations are parsed with
// (the schema wants a real port); ParseConfig swaps in 127.0.0.1:0.
const ListenerPlaceholder = "127.0.0.1:8080"

// ParseConfig parses a configuration body that has no listeners section,
// adding one listener on a free loopback port. Unless the body sets them,
// the shutdown grace is 5s and the access log is off.
func ParseConfig(t testing.TB, body string) *config.Config {
	t.Helper()
	text := ConfigText(body)
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("configuration rejected:\n%v\n--- configuration ---\n%s", err, text)
	}
	engine := os.Getenv("WEIR_TEST_ENGINE") // scripts/test.sh runs the suites on each engine
	for i := range cfg.Listeners {
		cfg.Listeners[i].Address = "127.0.0.1:0"
		if engine != "" {
			cfg.Listeners[i].Engine = engine
		}
	}
	return cfg
}

// ConfigText is the full configuration ParseConfig parses: the body with
// a listener on ListenerPlaceholder and the test defaults added.
func ConfigText(body string) string {
	text := "listeners:\n  - address: \"" + ListenerPlaceholder + "\"\n" + body
	if !strings.Contains(body, "shutdown_grace:") {
		text += "shutdown_grace: 5s\n"
	}
	if !strings.Contains(body, "\nlog:") && !strings.HasPrefix(body, "log:") {
		text += "log:\n  access: \"off\"\n"
	}
	return text
}

// OneRoute is a configuration body with one catch-all route to one
// upstream "app" with the given peer address (host:port). upstreamExtra
// is YAML for the upstream, indented by four spaces; topExtra is appended
// at the top level.
func OneRoute(peer, upstreamExtra, topExtra string) string {
	return "routes:\n  - upstream: app\nupstreams:\n  app:\n    peers: [\"http://" + peer + "\"]\n" +
		upstreamExtra + topExtra
}

// Weir is a Weir served in-process on a loopback port.
type Weir struct {
	Srv  *weir.Server
	Addr string // host:port of the listener
	Log  *SyncBuffer

	stop func()
}

// StartWeir compiles the configuration body (see ParseConfig), listens and
// serves until the test ends (or Stop). Weir's own log is kept and printed
// if the test fails.
func StartWeir(t testing.TB, body string, opts weir.Options) *Weir {
	t.Helper()
	return StartWeirConfig(t, ParseConfig(t, body), opts)
}

// StartWeirConfig is StartWeir with a parsed configuration.
func StartWeirConfig(t testing.TB, cfg *config.Config, opts weir.Options) *Weir {
	t.Helper()
	w := &Weir{Log: &SyncBuffer{}}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(w.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := weir.New(cfg, opts)
	if err != nil {
		t.Fatalf("weir.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	w.Srv = srv
	w.Addr = srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(cfg.ShutdownGrace + 10*time.Second):
				t.Errorf("Serve did not return after shutdown")
			}
		})
	}
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("weir log:\n%s", w.Log.String())
		}
	})
	return w
}

// Stop drains and stops Weir and waits until Serve returned.
func (w *Weir) Stop() { w.stop() }

// URL returns the proxy's base URL followed by path.
func (w *Weir) URL(path string) string { return "http://" + w.Addr + path }

// BuildWeir builds the weir command into dir and returns its path.
func BuildWeir(dir string) (string, error) {
	bin := filepath.Join(dir, "weir")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", bin, "github.com/weirproxy/weir/cmd/weir")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return bin, build.Run()
}

// Dial opens a raw connection to addr, closed when the test ends.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort returns a loopback address that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ReadAllUntilClose reads until the peer closes or timeout passes, and
// reports whether the connection was closed (EOF or reset) in time.
func ReadAllUntilClose(c net.Conn, timeout time.Duration) (got []byte, closed bool) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == nil {
			continue
		}
		return got, !IsTimeout(err)
	}
}

// IsTimeout reports a deadline error.
func IsTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout() || err == os.ErrDeadlineExceeded
}

// Clip shortens b for messages.
func Clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// RecvQueue returns the bytes waiting unread in the receive queue of the
// IPv4 loopback socket whose peer is remote (host:port), read from
// /proc/net/tcp; ok is false when there is no such socket or no /proc.
// It lets a test know that bytes sent to Weir have reached Weir's socket.
func RecvQueue(remote string) (n int, ok bool) {
	_, port, err := net.SplitHostPort(remote)
	if err != nil {
		return 0, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0, false
	}
	want := fmt.Sprintf("0100007F:%04X", p)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[2] != want {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		v, err := strconv.ParseInt(rx, 16, 64)
		if err != nil {
			return 0, false
		}
		return int(v), true
	}
	return 0, false
}
