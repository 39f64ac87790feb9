package forward

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weirproxy/weir/egress"
)

// tinyDNS answers A questions for the names in its table, NODATA for
// other types of those names, NXDOMAIN for the rest, and counts the
// questions by "TYPE name".
type tinyDNS struct {
	names map[string]netip.Addr // lower case, with the trailing dot
	mu    sync.Mutex
	asked map[string]int
}

func newTinyDNS(names map[string]netip.Addr) *tinyDNS {
	return &tinyDNS{names: names, asked: map[string]int{}}
}

func (d *tinyDNS) count(q string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[q]
}

// answer builds the response to one query (nil for garbage).
func (d *tinyDNS) answer(msg []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	d.asked[strings.TrimPrefix(q.Type.String(), "Type")+" "+name]++
	d.mu.Unlock()
	addr, ok := d.names[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if ok && q.Type == dnsmessage.TypeA {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300},
			dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// serveUDP answers over UDP on 127.0.0.1 and returns the address.
func (d *tinyDNS) serveUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := d.answer(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

// ServeHTTP answers DNS over HTTPS (RFC 8484) POSTs.
func (d *tinyDNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	out := d.answer(msg)
	if out == nil {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	_, _ = w.Write(out)
}

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
	dns := newTinyDNS(madeUp)
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		DNS:    DNSOptions{Servers: []string{dns.serveUDP(t)}},
	})
	getThrice(t, p, "origin.weir.test:"+strconv.Itoa(int(origin.port())))
	if n := dns.count("A origin.weir.test."); n != 1 {
		t.Errorf("the nameserver was asked %d times for the A record, want 1 (then the cache)", n)
	}
	if origin.accepts.Load() != 3 {
		t.Errorf("the origin accepted %d connections, want 3", origin.accepts.Load())
	}
	// Without AllowPrivate the same name is refused once resolved.
	strict := startProxy(t, Options{DNS: DNSOptions{Servers: []string{dns.serveUDP(t)}}})
	r, _ := rawRequest(t, strict.addr, "GET http://origin.weir.test:"+strconv.Itoa(int(origin.port()))+"/ HTTP/1.1\r\nHost: origin.weir.test\r\n\r\n")
	if r.StatusCode != 403 {
		t.Errorf("a name resolving to loopback without AllowPrivate: %d, want 403", r.StatusCode)
	}
}

// TestDNSOverHTTPS: with DNS.DoH, names are asked of a DNS-over-HTTPS
// server, once.
func TestDNSOverHTTPS(t *testing.T) {
	dns := newTinyDNS(madeUp)
	doh := httptest.NewTLSServer(dns)
	t.Cleanup(doh.Close)
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		DNS:    DNSOptions{DoH: doh.URL + "/dns-query", DoHClient: doh.Client()},
	})
	getThrice(t, p, "origin.weir.test:"+strconv.Itoa(int(origin.port())))
	if n := dns.count("A origin.weir.test."); n != 1 {
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
