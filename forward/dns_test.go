package forward

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
)

var madeUp = map[string]netip.Addr{"origin.weir.test.": netip.MustParseAddr("127.0.0.1")}

// getThrice fetches url through the proxy three times, each over a new
// outbound connection (absolute-form, CONNECT, SOCKS5), and checks the
// answers.
func getThrice(t *testing.T, p *testProxy, host string) {
	t.Helper()
	c := proxyClient(t, p.addr, "", "", nil)
	r, err := c.Get("http://" + host + "/")
	if err != nil {
		t.Fatalf("GET http://%s/: %v", host, err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from 127.0.0.1") {
		t.Fatalf("GET http://%s/: %d %q", host, r.StatusCode, body)
	}
	tunnel, resp := connectTunnel(t, p.addr, host, "", nil)
	if tunnel == nil {
		t.Fatalf("CONNECT %s: %d", host, resp.StatusCode)
	}
	if resp, body := getOver(t, tunnel, host, "/"); resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
		t.Fatalf("GET over CONNECT %s: %d %q", host, resp.StatusCode, body)
	}
	sc, err := socksDial(t, p.addr, host, "", "")
	if err != nil {
		t.Fatalf("SOCKS5 to %s: %v", host, err)
	}
	if resp, body := getOver(t, sc, host, "/"); resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
		t.Fatalf("GET over SOCKS5 to %s: %d %q", host, resp.StatusCode, body)
	}
}

// TestDNSServers: with DNS.Servers, a made-up name is resolved by the
// given nameserver, once: the second request is answered from the cache.
func TestDNSServers(t *testing.T) {
	dns := testkit.NewDNS(madeUp)
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		DNS:    DNSOptions{Servers: []string{dns.ServeUDP(t)}},
	})
	getThrice(t, p, "origin.weir.test:"+strconv.Itoa(int(origin.port())))
	if n := dns.Count("A origin.weir.test."); n != 1 {
		t.Errorf("the nameserver was asked %d times for the A record, want 1 (then the cache)", n)
	}
	if origin.accepts.Load() != 3 {
		t.Errorf("the origin accepted %d connections, want 3", origin.accepts.Load())
	}
	// Without AllowPrivate the same name is refused once resolved.
	strict := startProxy(t, Options{DNS: DNSOptions{Servers: []string{dns.ServeUDP(t)}}})
	r, _ := rawRequest(t, strict.addr, "GET http://origin.weir.test:"+strconv.Itoa(int(origin.port()))+"/ HTTP/1.1\r\nHost: origin.weir.test\r\n\r\n")
	if r.StatusCode != 403 {
		t.Errorf("a name resolving to loopback without AllowPrivate: %d, want 403", r.StatusCode)
	}
}

// TestDNSOverHTTPS: with DNS.DoH, names are asked of a DNS-over-HTTPS
// server, once.
func TestDNSOverHTTPS(t *testing.T) {
	dns := testkit.NewDNS(madeUp)
	doh := httptest.NewTLSServer(dns)
	t.Cleanup(doh.Close)
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		DNS:    DNSOptions{DoH: doh.URL + "/dns-query", DoHClient: doh.Client()},
	})
	getThrice(t, p, "origin.weir.test:"+strconv.Itoa(int(origin.port())))
	if n := dns.Count("A origin.weir.test."); n != 1 {
		t.Errorf("the DoH server was asked %d times for the A record, want 1", n)
	}
}

// TestDNSDefaults: the nameservers of resolv.conf, or the system's
// resolver when it lists none; nameservers and DoH together are refused.
func TestDNSDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct{ conf, want string }{
		{write("two", "# comment\nsearch example.com\nnameserver 127.0.0.1\nnameserver ::1\n"), "dns 127.0.0.1:53,[::1]:53"},
		{write("none", "search example.com\noptions ndots:2\n"), "system"},
		{write("bad", "nameserver not-an-address\n"), "system"},
		{filepath.Join(dir, "missing"), "system"},
	} {
		_, what, err := newResolver(DNSOptions{ResolvConf: tc.conf})
		if err != nil || what != tc.want {
			t.Errorf("%s: %q %v, want %q", filepath.Base(tc.conf), what, err, tc.want)
		}
	}
	if _, _, err := newResolver(DNSOptions{Servers: []string{"127.0.0.1"}, DoH: "https://127.0.0.1/dns-query"}); err == nil {
		t.Error("nameservers and DoH together accepted")
	}
	if _, _, err := newResolver(DNSOptions{Servers: []string{"not an address"}}); err == nil {
		t.Error("a bad nameserver accepted")
	}
	if _, _, err := newResolver(DNSOptions{DoH: "http://127.0.0.1/dns-query"}); err == nil {
		t.Error("a cleartext DoH URL accepted")
	}
}
