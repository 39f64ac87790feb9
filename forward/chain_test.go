package forward

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/socks5"
)

// TestChain: every protocol a client speaks to the first proxy reaches the
// origin through the next one, over HTTP and over SOCKS5, with the next
// proxy's credentials.
func TestChain(t *testing.T) {
	origin := newEchoOrigin(t, false)
	pol := egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}}
	for _, scheme := range []string{"http", "socks5"} {
		t.Run(scheme, func(t *testing.T) {
			next := startProxy(t, Options{Policy: pol, Auth: usersFile(t, "bob:pw")})
			first := startProxy(t, Options{Policy: pol, Upstream: scheme + "://bob:pw@" + next.addr})

			resp, body := rawRequest(t, first.addr, "GET http://"+origin.hostport()+"/chained HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from 127.0.0.1") {
				t.Fatalf("absolute-form through the chain: %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Proxy-Authorization"); got != "" {
				t.Errorf("the origin saw Proxy-Authorization %q", got)
			}
			if got := resp.Header.Get("X-URI"); got != "/chained" {
				t.Errorf("the origin saw request-target %q", got)
			}

			c := dial(t, first.addr)
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n", origin.hostport())
			br := bufio.NewReader(c)
			if r, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || r.StatusCode != 200 {
				t.Fatalf("CONNECT through the chain: %v %v", r, err)
			}
			fmt.Fprintf(c, "GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if r, err := http.ReadResponse(br, nil); err != nil || r.StatusCode != 200 {
				t.Fatalf("GET in the chained tunnel: %v %v", r, err)
			}
			c.Close()

			sc, err := socksDial(t, first.addr, origin.hostport(), "", "")
			if err != nil {
				t.Fatalf("SOCKS5 through the chain: %v", err)
			}
			if r, _ := getOver(t, sc, origin.hostport(), "/socks"); r.StatusCode != 200 {
				t.Fatalf("GET in the chained SOCKS5 tunnel: %d", r.StatusCode)
			}
			sc.Close()

			// The next proxy saw bob: one forwarded request over HTTP
			// (absolute form), or one more tunnel over SOCKS5, counted
			// once the first proxy's kept-alive connection closes.
			first.groups.expire(time.Now().Add(time.Hour))
			want := Usage{Requests: 1, Tunnels: 2}
			if scheme == "socks5" {
				want = Usage{Tunnels: 3}
			}
			testkit.WaitFor(t, 5*time.Second, "the next proxy's counters for bob", func() bool {
				u := next.Usage()["bob"]
				return u.Requests == want.Requests && u.Tunnels == want.Tunnels
			})
		})
	}
}

// TestChainRefusals: the first proxy's policy applies before the next
// proxy is contacted; the next proxy's refusals reach the client as 502
// (HTTP) or its own reply code (SOCKS5).
func TestChainRefusals(t *testing.T) {
	origin := newEchoOrigin(t, false)
	strict := startProxy(t, Options{Policy: egress.PolicyConfig{ConnectPorts: []uint16{origin.port()}}})
	open := egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}}

	// The first proxy refuses loopback itself: nothing reaches the next.
	guarded := startProxy(t, Options{
		Policy:   egress.PolicyConfig{ConnectPorts: []uint16{origin.port()}},
		Upstream: "http://" + strict.addr,
	})
	resp, _ := rawRequest(t, guarded.addr, "CONNECT "+origin.hostport()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 403 {
		t.Errorf("CONNECT to loopback through a guarded first proxy: %d", resp.StatusCode)
	}
	if n := guarded.dials.Load(); n != 0 {
		t.Errorf("the first proxy connected %d times for a refused destination", n)
	}

	for _, scheme := range []string{"http", "socks5"} {
		first := startProxy(t, Options{Policy: open, Upstream: scheme + "://" + strict.addr})
		resp, body := rawRequest(t, first.addr, "CONNECT "+origin.hostport()+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 502 || !strings.Contains(resp.Header.Get("Proxy-Status"), "next proxy") {
			t.Errorf("%s: CONNECT the next proxy refuses: %d %q %q", scheme, resp.StatusCode, resp.Header.Get("Proxy-Status"), body)
		}
		_, err := socksDial(t, first.addr, origin.hostport(), "", "")
		var re *socks5.ReplyError
		if !errors.As(err, &re) || re.Code != socks5.NotAllowed {
			t.Errorf("%s: SOCKS5 to what the next proxy refuses: %v, want reply 2", scheme, err)
		}
		resp, body = rawRequest(t, first.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 403 && resp.StatusCode != 502 {
			t.Errorf("%s: GET the next proxy refuses: %d %q", scheme, resp.StatusCode, body)
		}
	}
	if n := origin.accepts.Load(); n != 0 {
		t.Errorf("the origin accepted %d connections", n)
	}

	// Wrong credentials for the next proxy.
	next := startProxy(t, Options{Policy: open, Auth: usersFile(t, "bob:pw")})
	first := startProxy(t, Options{Policy: open, Upstream: "http://bob:wrong@" + next.addr})
	resp, _ = rawRequest(t, first.addr, "CONNECT "+origin.hostport()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(resp.Header.Get("Proxy-Status"), "407") {
		t.Errorf("wrong credentials for the next proxy: %d %q", resp.StatusCode, resp.Header.Get("Proxy-Status"))
	}
}

// TestChainServerSpeaksFirst: bytes a destination sends right after the
// tunnel opens, arriving with the next proxy's 200, are not lost.
func TestChainServerSpeaksFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "220 banner\r\n")
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	pol := egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{port}}
	next := startProxy(t, Options{Policy: pol})
	first := startProxy(t, Options{Policy: pol, Upstream: "http://" + next.addr})
	for i := range 5 {
		sc, err := socksDial(t, first.addr, ln.Addr().String(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readAllUntilClose(sc, 10*time.Second)
		if string(got) != "220 banner\r\n" {
			t.Fatalf("attempt %d: got %q", i, got)
		}
	}
}

func TestChainOptions(t *testing.T) {
	for _, bad := range []string{"ftp://127.0.0.1:21", "http://127.0.0.1", "socks5://:1080", "http://h:1/path", "http://:pw@h:1"} {
		if _, err := New(Options{Listen: "127.0.0.1:0", Upstream: bad}); err == nil {
			t.Errorf("Upstream %q accepted", bad)
		}
	}
	_, err := New(Options{Listen: "127.0.0.1:0", Upstream: "socks5://127.0.0.1:1080", UDP: true})
	if err == nil || !strings.Contains(err.Error(), "UDP") {
		t.Errorf("UDP with an upstream proxy: %v", err)
	}
	_, err = New(Options{Listen: "127.0.0.1:0", Upstream: "http://user:secret@127.0.0.1/"})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an error names the upstream password, or no error: %v", err)
	}
}
