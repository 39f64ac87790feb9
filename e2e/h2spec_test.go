package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/weirproxy/weir/internal/testutil"
)

// TestH2Spec runs the h2spec conformance suite, strict mode included,
// against the weir binary: `weir reverse-proxy --tls-cert --tls-key` over
// TLS, and `weir reverse-proxy --h2c` in cleartext. Every test case must
// pass, and none may be skipped.
func TestH2Spec(t *testing.T) {
	h2spec, err := exec.LookPath("h2spec")
	if err != nil {
		h2spec = filepath.Join(goBin(t), "h2spec")
	}
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		// Some test cases need a body larger than a flow-control window
		// they set; with a short one h2spec skips them.
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 4096))
	}))
	cert, key := tcCert(t, t.TempDir(), "h2spec")
	summary := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)
	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			proc := testutil.StartProcess(t, func(addr string) []string {
				args := []string{weirBin, "reverse-proxy", "--from", addr, "--to", o.peer(), "--access-log", "off"}
				if mode == "tls" {
					return append(args, "--tls-cert", cert, "--tls-key", key)
				}
				return append(args, "--h2c")
			})
			_, port, _ := net.SplitHostPort(proc.Addr)
			args := []string{"-h", "127.0.0.1", "-p", port, "--strict", "--timeout", "3"}
			if mode == "tls" {
				args = append(args, "--tls", "--insecure")
			}
			out, err := exec.Command(h2spec, args...).CombinedOutput()
			m := summary.FindSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec did not run (%v):\n%s", err, clip(out))
			}
			t.Logf("h2spec %s: %s", mode, m[0])
			if string(m[4]) != "0" || string(m[3]) != "0" || err != nil {
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
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}
