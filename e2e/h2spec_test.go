package e2e

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/upstream"
)

// TestH2Spec runs the h2spec conformance suite, strict mode included,
// against Weir's HTTP/2 front end over TLS and as cleartext h2c. Every
// test case must pass.
func TestH2Spec(t *testing.T) {
	h2spec, err := exec.LookPath("h2spec")
	if err != nil {
		h2spec = filepath.Join(goBin(t), "h2spec")
	}
	origin := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	peers := []*upstream.Peer{upstream.NewPeer(origin.addr(), 1, 0, upstream.PoolOptions{})}
	bal, _ := upstream.NewBalancer("round_robin", peers)
	g := &upstream.Group{Name: "origin", Peers: peers, Balancer: bal,
		Timeouts: upstream.Timeouts{Connect: time.Second, ResponseHeader: 5 * time.Second, Idle: 5 * time.Second}}
	r := &proxy.Route{Name: "all", Upstream: g}
	srv := proxy.NewServer(&proxy.Handler{Router: proxy.RouterFunc(func(*proxy.Session) *proxy.Route { return r }),
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { srv.Shutdown(t.Context()); g.Close() })
	stls, _ := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "127.0.0.1")

	summary := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)
	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lo := &proxy.ListenerOptions{H2C: true}
			args := []string{"-p", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "--strict", "--timeout", "3"}
			if mode == "tls" {
				lo = &proxy.ListenerOptions{TLS: stls}
				args = append(args, "--tls", "--insecure")
			}
			go srv.ServeListener(ln, lo)
			out, err := exec.Command(h2spec, args...).CombinedOutput()
			m := summary.FindSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec did not run (%v):\n%s", err, clip(out))
			}
			t.Logf("h2spec %s: %s", mode, m[0])
			if string(m[4]) != "0" || err != nil {
				t.Fatalf("h2spec failures:\n%s", out)
			}
		})
	}
}

// goBin is where `go install` puts tools (scripts/deps.sh installs
// h2spec there).
func goBin(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(string(regexp.MustCompile(`\s+$`).ReplaceAll(out, nil)), "bin")
}
