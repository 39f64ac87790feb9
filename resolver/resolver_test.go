package resolver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("192.0.2.2")
	v6a = netip.MustParseAddr("2001:db8::1")
)

func dnsBackend(t *testing.T, servers ...string) *DNSClient {
	t.Helper()
	c, err := NewDNSClient(DNSConfig{Servers: servers, AttemptTimeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newResolver(t *testing.T, b Backend, clock *fakeClock, mods ...func(*Config)) *Resolver {
	t.Helper()
	cfg := Config{Backend: b, Now: clock.Now, IgnoreHosts: true}
	for _, m := range mods {
		m(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lookup(t *testing.T, r *Resolver, host string, want ...netip.Addr) {
	t.Helper()
	got, err := r.LookupNetIP(context.Background(), host)
	if err != nil {
		t.Fatalf("LookupNetIP(%q): %v", host, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("LookupNetIP(%q) = %v, want %v", host, got, want)
	}
}

func lookupErr(t *testing.T, r *Resolver, host string, want error) *LookupError {
	t.Helper()
	got, err := r.LookupNetIP(context.Background(), host)
	if !errors.Is(err, want) {
		t.Fatalf("LookupNetIP(%q) = %v, %v; want error %v", host, got, err, want)
	}
	var le *LookupError
	if !errors.As(err, &le) || le.Host != host {
		t.Fatalf("error %v is not a *LookupError for %q", err, host)
	}
	return le
}

// counts checks how many A and AAAA questions for name reached s over UDP.
func counts(t *testing.T, s *testDNS, name string, a, aaaa int) {
	t.Helper()
	if got := s.count("udp", "A", name); got != a {
		t.Errorf("%s: %d A queries, want %d", name, got, a)
	}
	if got := s.count("udp", "AAAA", name); got != aaaa {
		t.Errorf("%s: %d AAAA queries, want %d", name, got, aaaa)
	}
}

func TestLookupAndCache(t *testing.T) {
	s := newTestDNS(t)
	s.set("www.example.test", &zone{a: []netip.Addr{v4a, v4b}, aaaa: []netip.Addr{v6a}, ttl: 60})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock())

	lookup(t, r, "www.example.test", v4a, v4b, v6a)
	counts(t, s, "www.example.test", 1, 1)
	// Cached, whatever the case or trailing dot.
	lookup(t, r, "WWW.Example.Test.", v4a, v4b, v6a)
	counts(t, s, "www.example.test", 1, 1)

	// The caller owns the slice.
	got, _ := r.LookupNetIP(context.Background(), "www.example.test")
	got[0] = netip.Addr{}
	lookup(t, r, "www.example.test", v4a, v4b, v6a)
}

func TestTTLExpiry(t *testing.T) {
	s := newTestDNS(t)
	s.set("a.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 60})
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)

	lookup(t, r, "a.test", v4a, v6a)
	clock.Advance(59 * time.Second)
	lookup(t, r, "a.test", v4a, v6a)
	counts(t, s, "a.test", 1, 1)

	s.set("a.test", &zone{a: []netip.Addr{v4b}, ttl: 60})
	clock.Advance(time.Second)
	lookup(t, r, "a.test", v4b)
	counts(t, s, "a.test", 2, 2)
}

func TestTTLClamped(t *testing.T) {
	s := newTestDNS(t)
	// Both families answer, so each expires on the clamped TTL.
	s.set("short.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 0})
	s.set("long.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 7 * 24 * 3600})
	s.set("huge.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 1 << 31}) // top bit set: read as 0
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)

	for _, name := range []string{"short.test", "long.test", "huge.test"} {
		lookup(t, r, name, v4a, v6a)
	}
	clock.Advance(DefaultMinTTL - time.Second)
	for _, name := range []string{"short.test", "long.test", "huge.test"} {
		lookup(t, r, name, v4a, v6a)
		counts(t, s, name, 1, 1)
	}
	clock.Advance(time.Second)
	lookup(t, r, "short.test", v4a, v6a)
	lookup(t, r, "huge.test", v4a, v6a)
	counts(t, s, "short.test", 2, 2)
	counts(t, s, "huge.test", 2, 2)

	clock.Advance(DefaultMaxTTL - DefaultMinTTL - time.Second)
	lookup(t, r, "long.test", v4a, v6a)
	counts(t, s, "long.test", 1, 1)
	clock.Advance(time.Second)
	lookup(t, r, "long.test", v4a, v6a)
	counts(t, s, "long.test", 2, 2)
}

func TestNegativeCaching(t *testing.T) {
	s := newTestDNS(t)
	s.set("nx-soa.test", &zone{nx: true, soa: &[2]uint32{300, 60}})
	s.set("nx-soa-ttl.test", &zone{nx: true, soa: &[2]uint32{20, 60}}) // the SOA's own TTL is smaller
	s.set("nx.test", &zone{nx: true})
	s.set("nodata.test", &zone{soa: &[2]uint32{3600, 3600}})
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)

	for _, name := range []string{"nx-soa.test", "nx-soa-ttl.test", "nx.test", "nodata.test"} {
		lookupErr(t, r, name, ErrNotFound)
		lookupErr(t, r, name, ErrNotFound)
		counts(t, s, name, 1, 1)
	}
	steps := []struct {
		at   time.Duration
		name string
	}{
		{20 * time.Second, "nx-soa-ttl.test"},
		{DefaultNegativeTTL, "nx.test"},
		{60 * time.Second, "nx-soa.test"},
		{DefaultMaxNegativeTTL, "nodata.test"},
	}
	var now time.Duration
	for _, st := range steps {
		clock.Advance(st.at - time.Second - now)
		lookupErr(t, r, st.name, ErrNotFound)
		counts(t, s, st.name, 1, 1)
		clock.Advance(time.Second)
		now = st.at
		lookupErr(t, r, st.name, ErrNotFound)
		counts(t, s, st.name, 2, 2)
	}
}

func TestOneFamily(t *testing.T) {
	s := newTestDNS(t)
	s.set("v4only.test", &zone{a: []netip.Addr{v4a}, ttl: 600, soa: &[2]uint32{60, 60}})
	s.set("v6only.test", &zone{aaaa: []netip.Addr{v6a}, ttl: 600})
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)

	lookup(t, r, "v4only.test", v4a)
	lookup(t, r, "v6only.test", v6a)
	// The missing family expires on its own negative TTL, the other
	// stays cached.
	clock.Advance(60 * time.Second)
	lookup(t, r, "v4only.test", v4a)
	counts(t, s, "v4only.test", 1, 2)
}

func TestCNAMEChain(t *testing.T) {
	s := newTestDNS(t)
	s.set("alias.test", &zone{cname: "real.test", cnameTTL: 30, a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 300})
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)

	lookup(t, r, "alias.test", v4a, v6a)
	clock.Advance(29 * time.Second)
	lookup(t, r, "alias.test", v4a, v6a)
	counts(t, s, "alias.test", 1, 1)
	clock.Advance(time.Second) // the CNAME's TTL is the smallest
	lookup(t, r, "alias.test", v4a, v6a)
	counts(t, s, "alias.test", 2, 2)
}

func TestTruncatedFallsBackToTCP(t *testing.T) {
	s := newTestDNS(t)
	s.set("big.test", &zone{a: []netip.Addr{v4a, v4b}, aaaa: []netip.Addr{v6a}, ttl: 60, truncUDP: true})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock())

	lookup(t, r, "big.test", v4a, v4b, v6a)
	counts(t, s, "big.test", 1, 1)
	if a, aaaa := s.count("tcp", "A", "big.test"), s.count("tcp", "AAAA", "big.test"); a != 1 || aaaa != 1 {
		t.Errorf("TCP queries: %d A, %d AAAA; want 1 and 1", a, aaaa)
	}
}

func TestForgedAnswersIgnored(t *testing.T) {
	s := newTestDNS(t)
	s.set("target.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 60, forge: true})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock())

	lookup(t, r, "target.test", v4a, v6a)
	counts(t, s, "target.test", 1, 1)
}

func TestRandomIDsAndPorts(t *testing.T) {
	s := newTestDNS(t)
	clock := newFakeClock()
	r := newResolver(t, dnsBackend(t, s.addr), clock)
	const n = 8
	for range n {
		lookupErr(t, r, "random.test", ErrNotFound)
		clock.Advance(time.Hour)
	}
	s.mu.Lock()
	ids, ports := len(s.ids), len(s.ports)
	s.mu.Unlock()
	// 2n queries; equal IDs or ports by chance are possible but rare.
	if ids < n || ports < n {
		t.Errorf("%d queries used %d IDs and %d source ports", 2*n, ids, ports)
	}
}

func TestConcurrentLookupsCoalesced(t *testing.T) {
	s := newTestDNS(t)
	hold := make(chan struct{})
	s.set("busy.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 60, hold: hold})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock())

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			addrs, err := r.LookupNetIP(context.Background(), "busy.test")
			if err == nil && !slices.Equal(addrs, []netip.Addr{v4a, v6a}) {
				err = errors.New("wrong addresses")
			}
			errs <- err
		})
	}
	waitFor(t, "all lookups to wait on one query per family", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		f4, f6 := r.flights[flightKey{"busy.test", IPv4}], r.flights[flightKey{"busy.test", IPv6}]
		return f4 != nil && f6 != nil && f4.waiters == n && f6.waiters == n
	})
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	counts(t, s, "busy.test", 1, 1)
}

func TestCallerContext(t *testing.T) {
	s := newTestDNS(t)
	hold := make(chan struct{})
	s.set("slow.test", &zone{a: []netip.Addr{v4a}, ttl: 60, hold: hold})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock())

	// A caller that gives up gets its context's error...
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.LookupNetIP(ctx, "slow.test")
		done <- err
	}()
	waitFor(t, "the lookup to start", func() bool { return s.count("udp", "A", "slow.test") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lookup: %v", err)
	}

	// ...and one whose deadline passes gets a timeout.
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now())
	defer dcancel()
	_, err := r.LookupNetIP(dctx, "slow.test")
	var le *LookupError
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &le) || !le.Timeout() {
		t.Fatalf("lookup past its deadline: %v", err)
	}

	// The query itself went on, and its answer is cached for the next
	// caller.
	close(hold)
	waitFor(t, "the query to finish", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.flights) == 0
	})
	lookup(t, r, "slow.test", v4a)
	counts(t, s, "slow.test", 1, 1)
}

func TestTimeout(t *testing.T) {
	s := newTestDNS(t)
	s.set("silent.test", &zone{silent: true})
	c, err := NewDNSClient(DNSConfig{Servers: []string{s.addr}, AttemptTimeout: 50 * time.Millisecond, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	r := newResolver(t, c, clock)

	le := lookupErr(t, r, "silent.test", ErrTimeout)
	if !le.Timeout() {
		t.Error("Timeout() = false")
	}
	counts(t, s, "silent.test", 2, 2)
	// The failure is remembered for a moment.
	lookupErr(t, r, "silent.test", ErrTimeout)
	counts(t, s, "silent.test", 2, 2)
	clock.Advance(DefaultFailureTTL)
	s.set("silent.test", &zone{a: []netip.Addr{v4a}, ttl: 60})
	lookup(t, r, "silent.test", v4a)
}

func TestLookupTimeoutBoundsQuery(t *testing.T) {
	s := newTestDNS(t)
	s.set("silent.test", &zone{silent: true})
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock(), func(c *Config) { c.LookupTimeout = 50 * time.Millisecond })
	lookupErr(t, r, "silent.test", ErrTimeout)
}

func TestServerFailover(t *testing.T) {
	bad := newTestDNS(t)
	bad.set("x.test", &zone{rcode: dnsmessage.RCodeServerFailure})
	good := newTestDNS(t)
	good.set("x.test", &zone{a: []netip.Addr{v4a}, ttl: 60})
	r := newResolver(t, dnsBackend(t, bad.addr, good.addr), newFakeClock())

	lookup(t, r, "x.test", v4a)
	counts(t, bad, "x.test", 1, 1)
	counts(t, good, "x.test", 1, 1)

	// When every server fails, the error says so.
	r = newResolver(t, dnsBackend(t, bad.addr), newFakeClock())
	le := lookupErr(t, r, "x.test", ErrServerFailure)
	if le.Timeout() || errors.Is(le, ErrNotFound) {
		t.Errorf("server failure reported as %v", le)
	}

	// A refused connection is a failure too; the next server is asked.
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.LocalAddr().String()
	l.Close()
	r = newResolver(t, dnsBackend(t, closed, good.addr), newFakeClock())
	lookup(t, r, "x.test", v4a)
}

func TestEviction(t *testing.T) {
	s := newTestDNS(t)
	for _, n := range []string{"one.test", "two.test", "three.test"} {
		s.set(n, &zone{a: []netip.Addr{v4a}, ttl: 600})
	}
	r := newResolver(t, dnsBackend(t, s.addr), newFakeClock(), func(c *Config) { c.MaxEntries = 2 })

	lookup(t, r, "one.test", v4a)
	lookup(t, r, "two.test", v4a)
	lookup(t, r, "one.test", v4a)   // one is now the most recently used
	lookup(t, r, "three.test", v4a) // two goes
	lookup(t, r, "one.test", v4a)
	lookup(t, r, "two.test", v4a)
	counts(t, s, "one.test", 1, 1)
	counts(t, s, "two.test", 2, 2)
	if n := r.cache.len(); n != 2 {
		t.Errorf("cache holds %d names, want 2", n)
	}

	r.Flush()
	lookup(t, r, "one.test", v4a)
	counts(t, s, "one.test", 2, 2)
}

func TestLiteralsAndLocalhost(t *testing.T) {
	r := newResolver(t, errorBackend{t}, newFakeClock())
	lookup(t, r, "192.0.2.1", v4a)
	lookup(t, r, "2001:db8::1", v6a)
	lookup(t, r, "fe80::1%eth0", netip.MustParseAddr("fe80::1%eth0"))
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	lookup(t, r, "localhost", lo...)
	lookup(t, r, "LocalHost.", lo...)
	lookup(t, r, "app.localhost", lo...)
}

func TestInvalidNames(t *testing.T) {
	r := newResolver(t, errorBackend{t}, newFakeClock())
	long := make([]byte, 64)
	for i := range long {
		long[i] = 'a'
	}
	for _, host := range []string{
		"", ".", "a..b", ".a", "-a.test", "a-.test", "a.-b", "a b", "a/b", "ex\x00ample.test",
		"bücher.test", "[::1]", "192.0.2.1:80", string(long) + ".test",
		string(long[:63]) + "." + string(long[:63]) + "." + string(long[:63]) + "." + string(long[:63]),
	} {
		lookupErr(t, r, host, ErrInvalidName)
	}
	// Underscores and digits are fine, and so is the longest label.
	if _, ok := canonicalName("_srv.1a-b." + string(long[:63])); !ok {
		t.Error("valid name refused")
	}
}

func TestHostsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# comment\n192.0.2.1 Box.Example box # trailing\n2001:db8::1 box\nbad-address other\n::ffff:192.0.2.2 mapped\n")
	clock := newFakeClock()
	r := newResolver(t, errorBackend{t}, clock, func(c *Config) { c.IgnoreHosts = false; c.HostsFile = path })

	lookup(t, r, "box", v4a, v6a)
	lookup(t, r, "box.example.", v4a)
	lookup(t, r, "mapped", v4b)

	write("192.0.2.2 box\n")
	// Only looked at again after the recheck interval.
	lookup(t, r, "box", v4a, v6a)
	clock.Advance(HostsRecheckInterval)
	lookup(t, r, "box", v4b)

	// A hosts file that goes away lists nothing.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(HostsRecheckInterval)
	var asked atomic.Bool
	r.backend = backendFunc(func(context.Context, string, Family) (Answer, error) {
		asked.Store(true)
		return Answer{NXDomain: true, TTL: TTLUnknown}, nil
	})
	if _, err := r.LookupNetIP(context.Background(), "box"); !errors.Is(err, ErrNotFound) || !asked.Load() {
		t.Errorf("after the hosts file went away: %v (backend asked: %v)", err, asked.Load())
	}
}

func TestDoH(t *testing.T) {
	s := newTestDNS(t)
	s.set("doh.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 60})
	s.set("nx.test", &zone{nx: true, soa: &[2]uint32{60, 60}})
	srv := httptest.NewTLSServer(s.dohHandler(DoHContentType, http.StatusOK))
	defer srv.Close()
	d, err := NewDoH(srv.URL+"/dns-query", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	r := newResolver(t, d, clock)

	lookup(t, r, "doh.test", v4a, v6a)
	lookup(t, r, "doh.test", v4a, v6a)
	lookupErr(t, r, "nx.test", ErrNotFound)
	if a, aaaa := s.count("doh", "A", "doh.test"), s.count("doh", "AAAA", "doh.test"); a != 1 || aaaa != 1 {
		t.Errorf("DoH queries: %d A, %d AAAA; want 1 and 1", a, aaaa)
	}
	clock.Advance(time.Minute)
	lookup(t, r, "doh.test", v4a, v6a)
	if a := s.count("doh", "A", "doh.test"); a != 2 {
		t.Errorf("DoH A queries after expiry: %d, want 2", a)
	}

	for _, bad := range []http.Handler{
		s.dohHandler("text/html", http.StatusOK),
		s.dohHandler(DoHContentType, http.StatusBadGateway),
	} {
		srv := httptest.NewTLSServer(bad)
		d, err := NewDoH(srv.URL, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		lookupErr(t, newResolver(t, d, clock), "doh.test", ErrServerFailure)
		srv.Close()
	}

	for _, u := range []string{"http://dns.example/dns-query", "https:///path", "::"} {
		if _, err := NewDoH(u, nil); err == nil {
			t.Errorf("NewDoH(%q) accepted", u)
		}
	}
}

func TestSystemBackend(t *testing.T) {
	s := newTestDNS(t)
	s.set("sys.test", &zone{a: []netip.Addr{v4a}, aaaa: []netip.Addr{v6a}, ttl: 3600})
	s.set("sys4.test", &zone{a: []netip.Addr{v4a}, ttl: 3600})
	var d net.Dialer
	sys := &System{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, s.addr)
	}}}
	clock := newFakeClock()
	r := newResolver(t, sys, clock)

	lookup(t, r, "sys.test", v4a, v6a)
	lookup(t, r, "sys4.test", v4a)
	lookupErr(t, r, "missing.test", ErrNotFound)
	// The system path cannot see the TTL of 3600: the unknown TTL applies.
	clock.Advance(DefaultUnknownTTL - time.Second)
	lookup(t, r, "sys.test", v4a, v6a)
	counts(t, s, "sys.test", 1, 1)
	clock.Advance(time.Second)
	lookup(t, r, "sys.test", v4a, v6a)
	counts(t, s, "sys.test", 2, 2)
}

func TestStrings(t *testing.T) {
	err := error(&LookupError{Host: "x.test", Err: ErrNotFound})
	if got := err.Error(); got != "lookup x.test: no such host" {
		t.Errorf("Error() = %q", got)
	}
	if IPv4.String() != "A" || IPv6.String() != "AAAA" {
		t.Error("Family.String")
	}
	for c, want := range map[dnsmessage.RCode]string{
		dnsmessage.RCodeServerFailure: "SERVFAIL", dnsmessage.RCodeRefused: "REFUSED",
		dnsmessage.RCodeFormatError: "FORMERR", dnsmessage.RCodeNotImplemented: "NOTIMP", 9: "RCODE 9",
	} {
		if got := rcodeName(c); got != want {
			t.Errorf("rcodeName(%d) = %q, want %q", c, got, want)
		}
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{Backend: errorBackend{t}, MinTTL: time.Hour, MaxTTL: time.Minute}); err == nil {
		t.Error("MinTTL above MaxTTL accepted")
	}
	for _, s := range []string{"dns.example", "192.0.2.1:0", "192.0.2.1:x", ""} {
		if _, err := NewDNSClient(DNSConfig{Servers: []string{s}}); err == nil {
			t.Errorf("server %q accepted", s)
		}
	}
	c, err := NewDNSClient(DNSConfig{Servers: []string{"192.0.2.1", "192.0.2.2:5353", "2001:db8::1", "[2001:db8::2]:5353"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:5353"}
	if got := c.Servers(); !slices.Equal(got, want) {
		t.Errorf("Servers() = %v, want %v", got, want)
	}
}

func TestResolvConf(t *testing.T) {
	rc := parseResolvConf([]byte(`# generated
search corp.example
nameserver 192.0.2.53 # first
nameserver   2001:db8::53
nameserver not-an-address
nameserver 192.0.2.54
nameserver 192.0.2.55
options ndots:5 timeout:3 attempts:9 rotate
; another comment
`))
	want := []string{"192.0.2.53:53", "[2001:db8::53]:53", "192.0.2.54:53"}
	if !slices.Equal(rc.servers, want) || rc.timeout != 3*time.Second || rc.attempts != MaxResolvConfAttempts {
		t.Errorf("parsed %+v", rc)
	}

	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 192.0.2.53\noptions timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewDNSClient(DNSConfig{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Servers(), []string{"192.0.2.53:53"}) || c.attemptTimeout != time.Second || c.attempts != DefaultAttempts {
		t.Errorf("client from resolv.conf: %v %v %v", c.Servers(), c.attemptTimeout, c.attempts)
	}
	c, err = NewDNSClient(DNSConfig{ResolvConf: filepath.Join(t.TempDir(), "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Servers(), []string{"127.0.0.1:53", "[::1]:53"}) {
		t.Errorf("without resolv.conf: %v", c.Servers())
	}
}

func TestParseResponseChecks(t *testing.T) {
	q, err := newQuestion("check.test", IPv4)
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{a: []netip.Addr{v4a}, ttl: 60}
	good := buildAnswer(t, 7, q, z, false)
	if _, err := parseResponse(good, 7, q); err != nil {
		t.Fatalf("good answer: %v", err)
	}
	if _, err := parseResponse(good, 8, q); err != errMismatch {
		t.Errorf("wrong ID: %v", err)
	}
	q6, _ := newQuestion("check.test", IPv6)
	if _, err := parseResponse(good, 7, q6); err != errMismatch {
		t.Errorf("wrong type: %v", err)
	}
	query, _ := buildQuery(7, q, true)
	if _, err := parseResponse(query[2:], 7, q); err != errMismatch {
		t.Errorf("a query taken as an answer: %v", err)
	}
	for i := range len(good) {
		parseResponse(good[:i], 7, q) // must not panic
	}
	// An answer of the other type is not used.
	resp, err := parseResponse(buildAnswer(t, 7, q6, &zone{aaaa: []netip.Addr{v6a}, ttl: 60}, false), 7, q6)
	if err != nil || len(resp.addrs) != 1 {
		t.Fatalf("AAAA answer: %+v %v", resp, err)
	}
}
