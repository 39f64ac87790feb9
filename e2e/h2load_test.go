package e2e

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/upstream"
)

// TestH2Load drives Weir over TLS with h2load (nghttp2's HTTP/2 load
// generator): a bounded number of requests over several connections and
// many concurrent streams, all of which must succeed.
func TestH2Load(t *testing.T) {
	h2load, err := exec.LookPath("h2load")
	if err != nil {
		t.Fatal("h2load is not installed (Debian: nghttp2-client); scripts/deps.sh installs it")
	}
	origin := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	}))
	stls, _ := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "127.0.0.1")
	_, addr := engineFront(t, &proxy.ListenerOptions{TLS: stls}, nil, upstream.ProtoHTTP1, origin.addr())

	const n = 5000
	out, err := exec.Command(h2load, "-n", strconv.Itoa(n), "-c", "8", "-m", "16", "https://"+addr+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in h2load output:\n%s", out)
	}
	if string(m[4]) != strconv.Itoa(n) || string(m[5]) != "0" || string(m[6]) != "0" {
		t.Fatalf("h2load: %s\n%s", m[0], out)
	}
	if !regexp.MustCompile(`Application protocol: h2`).Match(out) {
		t.Fatalf("h2load did not negotiate h2:\n%s", out)
	}
	if s := regexp.MustCompile(`status codes: (\d+) 2xx`).FindSubmatch(out); s == nil || string(s[1]) != strconv.Itoa(n) {
		t.Fatalf("not every status was 2xx:\n%s", out)
	}
	t.Logf("%s", m[0])
}
