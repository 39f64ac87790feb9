package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/forward"
	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/proxyauth"
	"github.com/weirproxy/weir/resolver"
	"github.com/weirproxy/weir/socks5"
)

// fwdProxy is a forward proxy served in-process on 127.0.0.1 for one test.
type fwdProxy struct {
	*forward.Server
	addr  string
	dials atomic.Int64 // outbound connection attempts
	log   *syncBuffer
}

// startForward starts a forward proxy with o, counting its outbound
// connection attempts, and stops it when the test ends. Names are
// resolved by Weir's resolver over the system's (so "localhost" is
// 127.0.0.1 and ::1 whatever the network).
func startForward(t *testing.T, o forward.Options) *fwdProxy {
	t.Helper()
	p := &fwdProxy{log: &syncBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Listener = ln
	o.Logger = slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.AccessLog = o.Logger
	if o.Resolver == nil {
		r, err := resolver.New(resolver.Config{Backend: &resolver.System{}})
		if err != nil {
			t.Fatal(err)
		}
		o.Resolver = r
	}
	o.DialControl = func(string, string, syscall.RawConn) error {
		p.dials.Add(1)
		return nil
	}
	srv, err := forward.New(o)
	if err != nil {
		t.Fatal(err)
	}
	p.Server, p.addr = srv, srv.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, forward.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("forward proxy log:\n%s", clip([]byte(p.log.String())))
		}
	})
	return p
}

// remoteOrigin answers with the client address it saw, as "from IP".
func remoteOrigin(t *testing.T) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("X-Proxy-Authorization-Seen", r.Header.Get("Proxy-Authorization"))
		fmt.Fprintf(w, "from %s path %s", host, r.URL.Path)
	}))
}

func portOf(t *testing.T, hostport string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// fwdCurl runs curl and returns its output and exit code; unlike curl it
// does not fail the test when curl fails.
func fwdCurl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curlPath(t), append([]string{"-sS", "--max-time", "30", "--connect-timeout", "10"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// fwdUsers loads a users file holding user:pass pairs (bcrypt at its
// lowest cost: the cost only slows tests down).
func fwdUsers(t *testing.T, creds ...string) *proxyauth.Users {
	t.Helper()
	var b strings.Builder
	for _, c := range creds {
		user, pass, _ := strings.Cut(c, ":")
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", user, h)
	}
	path := t.TempDir() + "/users"
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := proxyauth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// TestForwardProxyCurl: one port serves curl as an HTTP proxy (plain
// http:// and CONNECT for https://) and as a SOCKS5 proxy, with names
// resolved locally or by the proxy.
func TestForwardProxyCurl(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls origin %s", r.URL.Path)
	}))
	t.Cleanup(tlsOrigin.Close)
	tlsAddr := tlsOrigin.Listener.Addr().String()
	p := startForward(t, forward.Options{Policy: egress.PolicyConfig{
		AllowPrivate: true,
		ConnectPorts: []uint16{portOf(t, tlsAddr), portOf(t, o.addr())},
	}})
	port := strconv.Itoa(int(portOf(t, o.addr())))
	proxyURL := "http://" + p.addr

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"absolute-form", []string{"-x", proxyURL, "http://" + o.addr() + "/plain"}, "from 127.0.0.1 path /plain"},
		{"CONNECT to TLS", []string{"-k", "-x", proxyURL, "https://" + tlsAddr + "/secure"}, "tls origin /secure"},
		{"CONNECT forced for http", []string{"-p", "-x", proxyURL, "http://" + o.addr() + "/tunnelled"}, "from 127.0.0.1 path /tunnelled"},
		{"socks5", []string{"--socks5", p.addr, "http://" + o.addr() + "/socks"}, "from 127.0.0.1 path /socks"},
		{"socks5-hostname", []string{"--socks5-hostname", p.addr, "http://localhost:" + port + "/named"}, "from 127.0.0.1 path /named"},
		{"socks5h TLS", []string{"-k", "-x", "socks5h://" + p.addr, "https://" + tlsAddr + "/s"}, "tls origin /s"},
	} {
		out, errs, code := fwdCurl(t, tc.args...)
		if code != 0 || out != tc.want {
			t.Errorf("%s: exit %d, got %q, want %q; stderr: %s", tc.name, code, out, tc.want, errs)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "an access line for each protocol", func() bool {
		l := p.log.String()
		return strings.Contains(l, "proto=http ") && strings.Contains(l, "proto=connect ") && strings.Contains(l, "proto=socks5 ")
	})
}

// TestForwardProxySSRF: without --allow-private, loopback, private and
// metadata destinations are refused over HTTP (403), CONNECT (403) and
// SOCKS5 (reply 2), however they are written, and nothing is dialed.
func TestForwardProxySSRF(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	port := strconv.Itoa(int(portOf(t, o.addr())))
	p := startForward(t, forward.Options{Policy: egress.PolicyConfig{ConnectPorts: []uint16{portOf(t, o.addr()), 80}}})
	proxyURL := "http://" + p.addr
	hosts := []string{
		"127.0.0.1:" + port,
		"10.0.0.1:" + port,
		"169.254.169.254:80",
		"[::1]:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"localhost:" + port,
	}
	for _, h := range hosts {
		url := "http://" + h + "/latest/meta-data/"
		// Absolute-form: curl prints the 403 and exits 0.
		out, errs, code := fwdCurl(t, "-o", "/dev/null", "-w", "%{http_code}", "-x", proxyURL, url)
		if code != 0 || out != "403" {
			t.Errorf("absolute-form %s: exit %d status %q; %s", h, code, out, errs)
		}
		// CONNECT: curl reports the refused tunnel (exit 56).
		_, errs, code = fwdCurl(t, "-p", "-x", proxyURL, url)
		if code != 56 || !strings.Contains(errs, "403") {
			t.Errorf("CONNECT %s: exit %d, stderr %q; want 56 and 403", h, code, errs)
		}
		// SOCKS5 with the name sent to the proxy: reply 2 (exit 97).
		_, errs, code = fwdCurl(t, "-x", "socks5h://"+p.addr, url)
		if code != 97 || !strings.Contains(errs, "(2)") {
			t.Errorf("socks5h %s: exit %d, stderr %q; want 97 and reply (2)", h, code, errs)
		}
	}
	// SOCKS5 with addresses curl resolves itself.
	for _, h := range []string{"127.0.0.1:" + port, "10.0.0.1:" + port, "169.254.169.254:80"} {
		_, errs, code := fwdCurl(t, "--socks5", p.addr, "http://"+h+"/")
		if code != 97 || !strings.Contains(errs, "(2)") {
			t.Errorf("socks5 %s: exit %d, stderr %q", h, code, errs)
		}
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("the proxy attempted %d outbound connections", n)
	}
	if n := o.accepts.Load(); n != 0 {
		t.Errorf("the loopback origin accepted %d connections", n)
	}
}

// TestForwardProxyAuth: 407 with a challenge without credentials or with
// wrong ones, success with them; SOCKS5 refuses the wrong ones.
func TestForwardProxyAuth(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	p := startForward(t, forward.Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, o.addr())}},
		Auth:   fwdUsers(t, "alice:wonderland"),
	})
	url := "http://" + o.addr() + "/private"
	proxyURL := "http://" + p.addr

	out, errs, code := fwdCurl(t, "-D", "-", "-o", "/dev/null", "-x", proxyURL, url)
	if code != 0 || !strings.HasPrefix(out, "HTTP/1.1 407 ") || !strings.Contains(out, `Proxy-Authenticate: Basic realm="weir"`) {
		t.Errorf("no credentials: exit %d, head %q; %s", code, out, errs)
	}
	out, _, _ = fwdCurl(t, "-o", "/dev/null", "-w", "%{http_code}", "-x", proxyURL, "-U", "alice:wrong", url)
	if out != "407" {
		t.Errorf("wrong password: %q, want 407", out)
	}
	out, errs, code = fwdCurl(t, "-D", "-", "-x", proxyURL, "-U", "alice:wonderland", url)
	if code != 0 || !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.HasSuffix(out, "from 127.0.0.1 path /private") {
		t.Errorf("right password: exit %d, %q; %s", code, out, errs)
	}
	if strings.Contains(out, "X-Proxy-Authorization-Seen: Basic") {
		t.Errorf("the credentials reached the origin: %q", out)
	}
	_, errs, code = fwdCurl(t, "-p", "-x", proxyURL, url)
	if code != 56 || !strings.Contains(errs, "407") {
		t.Errorf("CONNECT without credentials: exit %d, %q", code, errs)
	}
	_, errs, code = fwdCurl(t, "--socks5", "alice:wrong@"+p.addr, url)
	if code != 97 {
		t.Errorf("SOCKS5 with a wrong password: exit %d, %q", code, errs)
	}
	out, errs, code = fwdCurl(t, "--socks5", "alice:wonderland@"+p.addr, url)
	if code != 0 || out != "from 127.0.0.1 path /private" {
		t.Errorf("SOCKS5 with the right password: exit %d %q %s", code, out, errs)
	}
	testutil.WaitFor(t, 5*time.Second, "alice's counters", func() bool {
		u := p.Usage()["alice"]
		return u.Requests == 1 && u.Tunnels == 1
	})
}

// TestForwardProxySourceAddrs: the origin sees the pool's addresses in
// turn (round robin), and one address for a sticky session.
func TestForwardProxySourceAddrs(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	pool := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	rr := startForward(t, forward.Options{
		Policy:  egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, o.addr())}},
		Sources: egress.SourceConfig{Addrs: pool},
	})
	var seen []string
	for i := range 4 {
		args := []string{"-x", "http://" + rr.addr, "http://" + o.addr() + "/"}
		if i%2 == 1 {
			args = []string{"--socks5", rr.addr, "http://" + o.addr() + "/"}
		}
		out, errs, code := fwdCurl(t, args...)
		if code != 0 {
			t.Fatalf("curl %v: %d %s", args, code, errs)
		}
		seen = append(seen, strings.Fields(out)[1])
	}
	if seen[0] == seen[1] || seen[0] != seen[2] || seen[1] != seen[3] ||
		(seen[0] != "127.0.0.2" && seen[0] != "127.0.0.3") || (seen[1] != "127.0.0.2" && seen[1] != "127.0.0.3") {
		t.Errorf("round robin over 127.0.0.2 and 127.0.0.3: the origin saw %v", seen)
	}

	sticky := startForward(t, forward.Options{
		Policy:  egress.PolicyConfig{AllowPrivate: true},
		Sources: egress.SourceConfig{Addrs: pool, Mode: egress.ModeSticky},
		Auth:    fwdUsers(t, "alice:pw"),
	})
	seen = seen[:0]
	for range 4 {
		out, errs, code := fwdCurl(t, "-x", "http://"+sticky.addr, "-U", "alice-session-abc123:pw", "http://"+o.addr()+"/")
		if code != 0 {
			t.Fatalf("sticky: %d %s", code, errs)
		}
		seen = append(seen, strings.Fields(out)[1])
	}
	for _, s := range seen[1:] {
		if s != seen[0] {
			t.Errorf("session alice-session-abc123 came from %v, want one address", seen)
			break
		}
	}
}

// TestForwardProxyUDP: a SOCKS5 UDP association carries a datagram to a
// local echo server and its answer back.
func TestForwardProxyUDP(t *testing.T) {
	t.Parallel()
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() { echo.Close(); wg.Wait() })
	echoAddr := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	p := startForward(t, forward.Options{Policy: egress.PolicyConfig{AllowPrivate: true}, UDP: true})

	ctrl := dial(t, p.addr)
	_ = ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	msg, _ = socks5.AppendRequest(msg, socks5.UDPAssociate, socks5.Addr{IP: netip.IPv4Unspecified()})
	if _, err := ctrl.Write(msg); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(ctrl, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("method selection %x %v", sel, err)
	}
	code, bound, err := socks5.ReadReply(ctrl)
	relay, ok := bound.AddrPort()
	if err != nil || code != socks5.Succeeded || !ok {
		t.Fatalf("UDP ASSOCIATE: %v %v %v", code, bound, err)
	}
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dg, _ := socks5.AppendUDPHeader(nil, socks5.AddrFromAddrPort(echoAddr))
	dg = append(dg, "ping"...)
	var answer []byte
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 20 && answer == nil; attempt++ { // UDP may drop one
		if _, err := client.WriteToUDPAddrPort(dg, relay); err != nil {
			t.Fatal(err)
		}
		_ = client.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, _, err := client.ReadFromUDPAddrPort(buf); err == nil {
			answer = buf[:n]
		}
	}
	src, hl, err := socks5.ParseUDPHeader(answer)
	if err != nil || string(answer[hl:]) != "echo:ping" {
		t.Fatalf("answer %q: %v", answer, err)
	}
	if ap, _ := src.AddrPort(); ap != echoAddr {
		t.Errorf("the answer names %v, want the echo server %v", src, echoAddr)
	}
}

// TestForwardProxyBrokenClients: clients that send garbage, SOCKS4,
// truncated or byte-at-a-time SOCKS5 are dealt with while curl keeps
// being served.
func TestForwardProxyBrokenClients(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	p := startForward(t, forward.Options{
		Policy:           egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, o.addr())}},
		HandshakeTimeout: time.Second,
		Limits:           proxy.Limits{HeaderReadTimeout: time.Second},
	})
	broken := map[string][]byte{
		"garbage":         {0xde, 0xad, 0xbe, 0xef},
		"socks4":          {4, 1, 0, 80, 127, 0, 0, 1, 0},
		"truncated":       {5, 2, 0},
		"silent":          nil,
		"half request":    {5, 1, 0, 5, 1, 0, 1, 127},
		"http head, slow": []byte("GET http://" + o.addr() + "/ HTTP/1.1\r\nHo"),
	}
	conns := map[string]net.Conn{}
	for name, b := range broken {
		c := dial(t, p.addr)
		if len(b) > 0 {
			_, _ = c.Write(b)
		}
		conns[name] = c
	}
	// A byte-at-a-time SOCKS5 client is served.
	c := dial(t, p.addr)
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	msg, _ = socks5.AppendRequest(msg, socks5.Connect, socks5.AddrFromAddrPort(netip.MustParseAddrPort(o.addr())))
	for i := range msg {
		if _, err := c.Write(msg[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var reply [2 + 10]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil || reply[3] != 0 {
		t.Fatalf("byte-at-a-time SOCKS5: %x %v", reply, err)
	}
	c.Close()
	// curl is served meanwhile, over both protocols.
	for _, args := range [][]string{
		{"-x", "http://" + p.addr, "http://" + o.addr() + "/ok"},
		{"--socks5", p.addr, "http://" + o.addr() + "/ok"},
	} {
		if out, errs, code := fwdCurl(t, args...); code != 0 || out != "from 127.0.0.1 path /ok" {
			t.Errorf("curl %v while broken clients wait: %d %q %s", args, code, out, errs)
		}
	}
	for name, c := range conns {
		got, closed := testutil.ReadAllUntilClose(c, 15*time.Second)
		if !closed {
			t.Errorf("%s: still open", name)
		}
		if name == "socks4" && !bytes.HasPrefix(got, []byte{0, 91}) {
			t.Errorf("socks4: answered %x, want SOCKS4's rejection 005b", got)
		}
	}
}

// TestForwardProxyCommand: `weir forward-proxy` serves curl over HTTP and
// SOCKS5 with a user from --auth, and drains on SIGTERM.
func TestForwardProxyCommand(t *testing.T) {
	t.Parallel()
	if out, errs, code := runWeir(t, "forward-proxy", "--help"); code != 0 || !strings.Contains(out, "--allow-private") {
		t.Fatalf("weir forward-proxy --help: exit %d\n%s%s", code, out, errs)
	}
	o := remoteOrigin(t)
	port := strconv.Itoa(int(portOf(t, o.addr())))
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--auth", "alice:wonderland",
			"--allow-private", "--connect-ports", port, "--source-addrs", "127.0.0.2", "--access-log", "stderr"}
	})
	url := "http://" + o.addr() + "/cli"
	if out, _, _ := fwdCurl(t, "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+p.Addr, url); out != "407" {
		t.Errorf("no credentials: %q, want 407", out)
	}
	for _, args := range [][]string{
		{"-x", "http://alice:wonderland@" + p.Addr, url},
		{"-p", "-x", "http://alice:wonderland@" + p.Addr, url},
		{"--socks5-hostname", "alice:wonderland@" + p.Addr, "http://localhost:" + port + "/cli"},
	} {
		if out, errs, code := fwdCurl(t, args...); code != 0 || out != "from 127.0.0.2 path /cli" {
			t.Errorf("curl %v: %d %q %s", args, code, out, errs)
		}
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("weir forward-proxy did not exit after SIGTERM")
	}
	if p.Err != nil {
		t.Errorf("exit after SIGTERM: %v", p.Err)
	}
	if l := p.Stderr.String(); !strings.Contains(l, "msg=access") || !strings.Contains(l, "user=alice") {
		t.Errorf("no access lines naming alice in:\n%s", clip([]byte(l)))
	}
}

// TestForwardProxyChain: curl's requests through one Weir reach the origin
// through a second one, over either protocol between the two.
func TestForwardProxyChain(t *testing.T) {
	t.Parallel()
	o := remoteOrigin(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls origin %s", r.URL.Path)
	}))
	t.Cleanup(tlsOrigin.Close)
	tlsAddr := tlsOrigin.Listener.Addr().String()
	pol := egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, tlsAddr), portOf(t, o.addr())}}
	next := startForward(t, forward.Options{
		Policy:  pol,
		Auth:    fwdUsers(t, "bob:pw"),
		Sources: egress.SourceConfig{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.3")}},
	})
	for _, scheme := range []string{"http", "socks5"} {
		first := startForward(t, forward.Options{Policy: pol, Upstream: scheme + "://bob:pw@" + next.addr})
		for _, args := range [][]string{
			{"-x", "http://" + first.addr, "http://" + o.addr() + "/a"},
			{"-k", "-x", "http://" + first.addr, "https://" + tlsAddr + "/b"},
			{"--socks5-hostname", first.addr, "http://localhost:" + strconv.Itoa(int(portOf(t, o.addr()))) + "/c"},
		} {
			out, errs, code := fwdCurl(t, args...)
			path := args[len(args)-1][strings.LastIndexByte(args[len(args)-1], '/'):]
			want := "from 127.0.0.3 path " + path // the second proxy's source address
			if strings.HasPrefix(args[len(args)-1], "https") {
				want = "tls origin " + path
			}
			if code != 0 || out != want {
				t.Errorf("%s chain, curl %v: exit %d %q, want %q; %s", scheme, args, code, out, want, errs)
			}
		}
	}
}
