package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/internal/testutil"
)

// rawConnect opens a CONNECT tunnel over HTTP/1.1 and returns it, or nil
// and the refusal's status.
func rawConnect(t *testing.T, proxyAddr, target, user string) (net.Conn, int) {
	t.Helper()
	c := dial(t, proxyAddr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, base64.StdEncoding.EncodeToString([]byte(user+":pw")))
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != 200 {
		c.Close()
		return nil, resp.StatusCode
	}
	_ = c.SetDeadline(time.Time{})
	return c, 200
}

// TestForwardProxyUserLimits: `weir forward-proxy --user-max-conns 2
// --user-rate 256KiB`: a third concurrent tunnel of one user is refused
// (429 for curl over HTTP, reply 1 over SOCKS5) while two are open, and
// 1 MiB through a CONNECT tunnel or as a plain response body takes at
// least 3 s. Only lower bounds on time are checked.
func TestForwardProxyUserLimits(t *testing.T) {
	t.Parallel()
	echo := testkit.Echo(t)
	const size = 1 << 20
	big := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(make([]byte, size))
	}))
	ports := strconv.Itoa(int(portOf(t, echo))) + "," + strconv.Itoa(int(portOf(t, big.addr())))
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--auth", "alice:pw", "--auth", "bob:pw", "--auth", "carol:pw",
			"--allow-private", "--connect-ports", ports, "--user-max-conns", "2", "--user-rate", "256KiB", "--access-log", "stderr"}
	})
	// Connection limit: two of alice's tunnels open, the third refused.
	one, _ := rawConnect(t, p.Addr, echo, "alice")
	two, _ := rawConnect(t, p.Addr, echo, "alice")
	if one == nil || two == nil {
		t.Fatal("alice's first two tunnels were refused")
	}
	_, errs, code := fwdCurl(t, "-p", "-x", "http://alice:pw@"+p.Addr, "http://"+echo+"/")
	if code != 56 || !strings.Contains(errs, "429") {
		t.Errorf("alice's third tunnel (curl -p): exit %d, %q; want 56 and 429", code, errs)
	}
	_, errs, code = fwdCurl(t, "--socks5", "alice:pw@"+p.Addr, "http://"+echo+"/")
	if code != 97 || !strings.Contains(errs, "(1)") {
		t.Errorf("alice's third tunnel over SOCKS5: exit %d, %q; want 97 and reply (1)", code, errs)
	}
	if c, status := rawConnect(t, p.Addr, echo, "carol"); c == nil {
		t.Errorf("carol, with her own limit: %d", status)
	}
	one.Close()
	two.Close()

	// Rate: bob downloads 1 MiB through a tunnel, carol as a plain
	// response body; each has the rate to themselves.
	type result struct {
		who  string
		out  string
		errs string
		code int
		d    time.Duration
	}
	results := make(chan result, 2)
	for _, tc := range [][]string{
		{"bob", "-p", "-x", "http://bob:pw@" + p.Addr},
		{"carol", "-x", "http://carol:pw@" + p.Addr},
	} {
		go func() {
			start := time.Now()
			out, errs, code := fwdCurl(t, append(tc[1:], "-o", "/dev/null", "-w", "%{size_download}", "http://"+big.addr()+"/")...)
			results <- result{tc[0], out, errs, code, time.Since(start)}
		}()
	}
	for range 2 {
		r := <-results
		if r.code != 0 || r.out != strconv.Itoa(size) {
			t.Errorf("%s: exit %d, %s bytes; %s", r.who, r.code, r.out, r.errs)
			continue
		}
		if r.d < 3*time.Second {
			t.Errorf("%s: 1 MiB in %v at 256 KiB/s, want at least 3s", r.who, r.d)
		}
		t.Logf("%s: 1 MiB in %v at 256 KiB/s", r.who, r.d.Round(time.Millisecond))
	}
	if l := p.Stderr.String(); !strings.Contains(l, "too many concurrent connections for this user") {
		t.Errorf("no refusal in the access log:\n%s", clip([]byte(l)))
	}
}

// TestForwardProxyNewFlagErrors: mistakes in the new flags are usage
// errors (exit 2) that name the flag.
func TestForwardProxyNewFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user-rate", "lots"}, "--user-rate"},
		{[]string{"--user-rate", "-1MiB"}, "--user-rate"},
		{[]string{"--user-max-conns", "-1"}, "--user-max-conns"},
		{[]string{"--http3"}, "--http3 needs --tls-cert"},
		{[]string{"--tls-cert", "x.pem"}, "--tls-key"},
		{[]string{"--doh", "https://127.0.0.1/dns-query", "--dns-server", "127.0.0.1"}, "--doh"},
	} {
		_, errs, code := runWeir(t, append([]string{"forward-proxy", "--listen", "127.0.0.1:0"}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("weir forward-proxy %v: exit %d, %q; want 2 naming %s", tc.args, code, errs, tc.want)
		}
	}
	out, _, code := runWeir(t, "forward-proxy", "--help")
	for _, flag := range []string{"-tls-cert", "-http3", "-user-max-conns", "-user-rate", "-dns-server", "-doh"} {
		if code != 0 || !strings.Contains(out, flag) {
			t.Errorf("--help does not describe %s", flag)
		}
	}
}
