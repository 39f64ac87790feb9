package forward

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/socks5"
)

// connectTunnel opens a CONNECT tunnel over HTTP/1.1 from local (zero:
// any) and returns the connection, or the refusal's response.
func connectTunnel(t testing.TB, proxyAddr, target, cred string, local net.Addr) (net.Conn, *http.Response) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	c, err := d.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, cred)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != 200 {
		c.Close()
		return nil, resp
	}
	_ = c.SetDeadline(time.Time{})
	return &bufferedConn{Conn: c, r: br}, resp
}

// bufferedConn reads through the reader that read the response head, so
// that tunnel bytes that came with it are not lost.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// echoOnce checks that a tunnel to tcpEcho carries msg both ways.
func echoOnce(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("echo %q: %q %v", msg, b, err)
	}
	_ = c.SetDeadline(time.Time{})
}

// TestUserMaxConns: with MaxConns 2, a user's third concurrent tunnel is
// refused (429 with Proxy-Status over HTTP, reply 1 over SOCKS5) while
// another user is served, and the user is served again once one of the
// two ended.
func TestUserMaxConns(t *testing.T) {
	echo := testkit.Echo(t)
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Auth:       usersFile(t, "alice:pw", "bob:pw"),
		Policy:     egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, echo)}},
		UserLimits: UserLimits{MaxConns: 2},
	})
	alice, bob := basic("alice", "pw"), basic("bob", "pw")
	first, resp := connectTunnel(t, p.addr, echo, alice, nil)
	if first == nil {
		t.Fatalf("first tunnel: %d", resp.StatusCode)
	}
	echoOnce(t, first, "one")
	second, err := socksDial(t, p.addr, echo, "alice-session-x", "pw")
	if err != nil {
		t.Fatalf("second tunnel: %v", err)
	}
	echoOnce(t, second, "two")

	third, resp := connectTunnel(t, p.addr, echo, alice, nil)
	if third != nil || resp.StatusCode != 429 || !strings.Contains(resp.Header.Get("Proxy-Status"), "error=http_request_denied") {
		t.Fatalf("third CONNECT: %d %v, want 429 with Proxy-Status", resp.StatusCode, resp.Header)
	}
	_, err = socksDial(t, p.addr, echo, "alice", "pw")
	var re *socks5.ReplyError
	if !errors.As(err, &re) || re.Code != socks5.GeneralFailure {
		t.Fatalf("third SOCKS5 tunnel: %v, want reply 1", err)
	}
	r, body := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n"+alice+"\r\n")
	if r.StatusCode != 429 {
		t.Fatalf("plain request over the limit: %d %q", r.StatusCode, body)
	}
	other, resp := connectTunnel(t, p.addr, echo, bob, nil)
	if other == nil {
		t.Fatalf("bob, under his own limit: %d", resp.StatusCode)
	}
	echoOnce(t, other, "bob")

	// Once a tunnel ends, alice gets one again.
	first.Close()
	testkit.WaitFor(t, 10*time.Second, "a tunnel for alice after one ended", func() bool {
		c, _ := connectTunnel(t, p.addr, echo, alice, nil)
		if c == nil {
			return false
		}
		c.Close()
		return true
	})
	if !strings.Contains(p.acc.String(), "error=\"too many concurrent connections for this user\"") {
		t.Errorf("no refusal in the access log:\n%s", p.acc.String())
	}
}

// TestUserMaxConnsByAddress: without authentication each client address
// has its own limit.
func TestUserMaxConnsByAddress(t *testing.T) {
	echo := testkit.Echo(t)
	p := startProxy(t, Options{
		Policy:     egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, echo)}},
		UserLimits: UserLimits{MaxConns: 1},
	})
	from := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip)} }
	if c, resp := connectTunnel(t, p.addr, echo, "", from("127.0.0.1")); c == nil {
		t.Fatalf("first tunnel from 127.0.0.1: %d", resp.StatusCode)
	}
	if c, resp := connectTunnel(t, p.addr, echo, "", from("127.0.0.1")); c != nil || resp.StatusCode != 429 {
		t.Fatalf("second tunnel from 127.0.0.1: %v, want 429", resp.Status)
	}
	if c, resp := connectTunnel(t, p.addr, echo, "", from("127.0.0.2")); c == nil {
		t.Fatalf("a tunnel from 127.0.0.2: %d", resp.StatusCode)
	}
}

// TestUserRate: at 256 KiB/s, 1 MiB takes at least 3 s (the bucket lets
// 64 KiB through at once) whichever way it goes and however it is split
// over the user's tunnels: two 512 KiB downloads of one user (CONNECT and
// SOCKS5) share the rate, an upload has its own bucket, and a plain HTTP
// response body is paced too. Only lower bounds are checked.
func TestUserRate(t *testing.T) {
	const rateBPS = 256 << 10
	const minTime = 3 * time.Second
	src := byteSource(t, 512<<10)
	sink := byteSink(t, 1<<20)
	big := newBigOrigin(t, 1<<20)
	p := startProxy(t, Options{
		Auth:       usersFile(t, "alice:pw", "bob:pw"),
		Policy:     egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{portOf(t, src), portOf(t, sink)}},
		UserLimits: UserLimits{BytesPerSecond: rateBPS},
	})
	start := time.Now()
	type result struct {
		what string
		n    int64
		d    time.Duration
		err  error
	}
	results := make(chan result, 4)
	download := func(what string, c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		n, err := io.Copy(io.Discard, c)
		c.Close()
		results <- result{what, n, time.Since(start), err}
	}
	c1, resp := connectTunnel(t, p.addr, src, basic("alice", "pw"), nil)
	if c1 == nil {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	c2, err := socksDial(t, p.addr, src, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	up, resp := connectTunnel(t, p.addr, sink, basic("alice", "pw"), nil)
	if up == nil {
		t.Fatalf("CONNECT to the sink: %d", resp.StatusCode)
	}
	go download("CONNECT download", c1)
	go download("SOCKS5 download", c2)
	go func() {
		_ = up.SetDeadline(time.Now().Add(60 * time.Second))
		_, err := up.Write(make([]byte, 1<<20))
		b := make([]byte, 2)
		if err == nil {
			_, err = io.ReadFull(up, b)
		}
		if err == nil && string(b) != "ok" {
			err = fmt.Errorf("the sink answered %q", b)
		}
		up.Close()
		results <- result{"upload", 1 << 20, time.Since(start), err}
	}()
	go func() {
		c := proxyClient(t, p.addr, "bob", "pw", nil)
		r, err := c.Get("http://" + big.hostport() + "/")
		if err != nil {
			results <- result{"plain HTTP body", 0, 0, err}
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		results <- result{"plain HTTP body", n, time.Since(start), err}
	}()
	var downloaded int64
	var last time.Duration
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Fatalf("%s: %v", r.what, r.err)
		}
		switch r.what {
		case "CONNECT download", "SOCKS5 download":
			downloaded += r.n
			last = max(last, r.d)
		default:
			if r.n != 1<<20 || r.d < minTime {
				t.Errorf("%s: %d bytes in %v, want 1 MiB in at least %v", r.what, r.n, r.d, minTime)
			}
			t.Logf("%s: 1 MiB in %v", r.what, r.d.Round(time.Millisecond))
		}
	}
	if downloaded != 1<<20 || last < minTime {
		t.Errorf("two downloads sharing alice's rate: %d bytes in %v, want 1 MiB in at least %v", downloaded, last, minTime)
	}
	t.Logf("two downloads sharing one rate: 1 MiB in %v", last.Round(time.Millisecond))
	testkit.WaitFor(t, 5*time.Second, "alice's bytes counted", func() bool {
		u := p.Usage()["alice"]
		return u.BytesOut >= 1<<20 && u.BytesIn >= 1<<20
	})
}

// bigOrigin answers every request with n bytes and a Content-Length.
type bigOrigin struct{ *httptest.Server }

func newBigOrigin(t testing.TB, n int) bigOrigin {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(n))
		_, _ = w.Write(make([]byte, n))
	}))
	t.Cleanup(o.Close)
	return bigOrigin{o}
}

func (o bigOrigin) hostport() string { return o.Listener.Addr().String() }

// TestUserTableForgets: users with nothing in progress and full buckets
// are forgotten, so the table stays bounded by the users active at once.
func TestUserTableForgets(t *testing.T) {
	conns := newUserTable(UserLimits{MaxConns: 1})
	for i := range 5000 {
		u, ok := conns.acquire(fmt.Sprint("ip:", i))
		if !ok {
			t.Fatal("refused a first use")
		}
		u.release()
	}
	if n := conns.size(); n != 0 {
		t.Errorf("connection limits: %d users remembered with nothing in progress", n)
	}
	rates := newUserTable(UserLimits{BytesPerSecond: 1 << 20})
	held, _ := rates.acquire("u:busy")
	for i := range 5000 {
		u, _ := rates.acquire(fmt.Sprint("ip:", i))
		u.release()
	}
	if n := rates.size(); n > 2*minSweep+1 {
		t.Errorf("rate limits: %d users remembered, want at most %d", n, 2*minSweep+1)
	}
	if u, _ := rates.acquire("u:busy"); u != held {
		t.Error("a user with a use in progress was forgotten")
	}
	if u, ok := newUserTable(UserLimits{}).acquire("x"); u != nil || !ok {
		t.Error("no limits should mean no state")
	}
}

// TestUserRateUDP: SOCKS5 datagrams over the user's rate are dropped: at
// one byte per second the bucket holds 64 KiB, so of five 40,000-byte
// datagrams one goes out and comes back.
func TestUserRateUDP(t *testing.T) {
	echo := udpEcho(t)
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, UDP: true, UserLimits: UserLimits{BytesPerSecond: 1}})
	ctrl, pc, relay := udpAssociate(t, p.addr, "", "")
	dg, _ := socks5.AppendUDPHeader(nil, socks5.AddrFromAddrPort(echo.LocalAddr().(*net.UDPAddr).AddrPort()))
	dg = append(dg, make([]byte, 40000)...)
	answers := 0
	buf := make([]byte, 64<<10)
	for range 5 {
		if _, err := pc.WriteToUDPAddrPort(dg, relay); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := pc.ReadFromUDPAddrPort(buf); err == nil {
			answers++
		}
	}
	if answers > 1 {
		t.Errorf("%d datagrams of 40,000 bytes came back at 1 byte/s, want at most one", answers)
	}
	ctrl.Close()
	testkit.WaitFor(t, 5*time.Second, "the association to end", func() bool { return p.Usage()[""].Associations == 1 })
	if u := p.Usage()[""]; u.BytesIn != 40000 {
		t.Errorf("%d bytes sent to the destination, want the one datagram the bucket held (40000)", u.BytesIn)
	}
}

// TestUserRatePlainUpload: plain http:// request bodies are slowed to the
// user's rate too, with a Content-Length and chunked, and arrive whole.
// At 256 KiB/s with a 64 KiB bucket, 512 KiB takes at least 1.75 s.
func TestUserRatePlainUpload(t *testing.T) {
	const rateBPS, size = 256 << 10, 512 << 10
	const minTime = 1750 * time.Millisecond
	got := make(chan string, 2)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		n, err := io.Copy(sum, r.Body)
		got <- fmt.Sprintf("%d %x %v %v", n, sum.Sum(nil)[:4], r.TransferEncoding, err)
		w.WriteHeader(204)
	}))
	t.Cleanup(origin.Close)
	p := startProxy(t, Options{
		Auth:       usersFile(t, "carol:pw"),
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		UserLimits: UserLimits{BytesPerSecond: rateBPS},
	})
	body := bytes.Repeat([]byte("upload "), size/7+1)[:size]
	sum := sha256.Sum256(body)
	c := proxyClient(t, p.addr, "carol", "pw", nil)
	for _, chunked := range []bool{false, true} {
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length known: the client sends it chunked
		}
		start := time.Now()
		resp, err := c.Post(origin.URL+"/up", "application/octet-stream", r)
		if err != nil {
			t.Fatalf("chunked %v: %v", chunked, err)
		}
		resp.Body.Close()
		d := time.Since(start)
		want := fmt.Sprintf("%d %x [] <nil>", size, sum[:4])
		if chunked {
			want = fmt.Sprintf("%d %x [chunked] <nil>", size, sum[:4])
		}
		if o := <-got; resp.StatusCode != 204 || o != want || d < minTime {
			t.Errorf("chunked %v: status %d, origin saw %q (want %q), in %v (want at least %v)", chunked, resp.StatusCode, o, want, d, minTime)
		}
		t.Logf("chunked %v: 512 KiB up in %v", chunked, d.Round(time.Millisecond))
	}
}

// byteSource is a TCP server on 127.0.0.1 that sends n bytes to every
// client and closes.
func byteSource(t testing.TB, n int) string {
	t.Helper()
	return testkit.TCP(t, 60*time.Second, func(c net.Conn) { _, _ = c.Write(make([]byte, n)) })
}

// byteSink is a TCP server on 127.0.0.1 that reads n bytes from every
// client, then answers "ok".
func byteSink(t testing.TB, n int) string {
	t.Helper()
	return testkit.TCP(t, 60*time.Second, func(c net.Conn) {
		if _, err := io.CopyN(io.Discard, c, int64(n)); err == nil {
			_, _ = io.WriteString(c, "ok")
		}
	})
}
