package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeResolver answers from a table and counts its lookups. It never
// touches the network.
type fakeResolver struct {
	answers map[string][]netip.Addr
	err     error
	calls   atomic.Int32
}

func (r *fakeResolver) LookupNetIP(_ context.Context, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	if r.err != nil {
		return nil, r.err
	}
	return r.answers[host], nil
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// dialLog records the addresses a Dialer tried.
type dialLog struct {
	mu    sync.Mutex
	tried []netip.AddrPort
	local []netip.Addr
}

func (l *dialLog) add(local netip.Addr, remote netip.AddrPort) {
	l.mu.Lock()
	l.tried = append(l.tried, remote)
	l.local = append(l.local, local)
	l.mu.Unlock()
}

func (l *dialLog) snapshot() []netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]netip.AddrPort(nil), l.tried...)
}

// loopbackOnly makes d dial for real but only to loopback addresses: any
// other destination fails the test and is never sent a packet.
func loopbackOnly(t *testing.T, d *Dialer, log *dialLog) {
	t.Helper()
	d.dial = func(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		if log != nil {
			log.add(local, remote)
		}
		if !remote.Addr().IsLoopback() {
			t.Errorf("attempted a connection to non-loopback %v", remote)
			return nil, errors.New("test: non-loopback destination blocked")
		}
		real := Dialer{}
		return real.dialOne(ctx, local, remote)
	}
}

// listen starts a loopback listener that accepts connections and reports
// each one's remote address.
func listen(t *testing.T, network, addr string) (netip.AddrPort, <-chan netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), seen
}

func loopbackPolicy(t *testing.T) *Policy {
	return mustPolicy(t, PolicyConfig{AllowCIDRs: prefixes("127.0.0.0/8", "::1/128"), AllowAllPorts: true})
}

func hostport(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func TestDialRefusesResolvedLoopback(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{
		"evil.test": addrs("127.0.0.1"),
		"meta.test": addrs("::ffff:169.254.169.254", "10.0.0.1"),
		"six.test":  addrs("::1", "64:ff9b::7f00:1"),
	}}
	var log dialLog
	d := &Dialer{Resolver: res}
	loopbackOnly(t, d, &log)
	for host, want := range map[string]string{
		"evil.test": reasonLoopback,
		"meta.test": reasonMetadata, // the first refusal is reported
		"six.test":  reasonLoopback,
	} {
		_, _, err := d.DialContext(context.Background(), "tcp", host+":443", DialOptions{})
		if got := reasonOf(t, err); got != want {
			t.Errorf("%s: reason %q, want %q", host, got, want)
		}
	}
	if tried := log.snapshot(); len(tried) != 0 {
		t.Errorf("dialed %v for refused names", tried)
	}
}

func TestDialOnlyCheckedAddresses(t *testing.T) {
	target, seen := listen(t, "tcp4", "127.0.0.1:0")
	res := &fakeResolver{answers: map[string][]netip.Addr{
		"mixed.test": addrs("10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "127.0.0.1"),
	}}
	var log dialLog
	d := &Dialer{Resolver: res, Policy: mustPolicy(t, PolicyConfig{AllowCIDRs: prefixes("127.0.0.0/8")})}
	loopbackOnly(t, d, &log)

	c, remote, err := d.DialContext(context.Background(), "tcp", hostport("mixed.test", target.Port()),
		DialOptions{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if remote != target {
		t.Errorf("connected to %v, want %v", remote, target)
	}
	<-seen
	tried := log.snapshot()
	if len(tried) != 1 || tried[0] != target {
		t.Errorf("tried %v, want only %v (duplicates folded, refused dropped)", tried, target)
	}
	if n := res.calls.Load(); n != 1 {
		t.Errorf("resolver called %d times, want 1", n)
	}
}

func TestDialLiterals(t *testing.T) {
	var log dialLog
	d := &Dialer{Resolver: &fakeResolver{}}
	loopbackOnly(t, d, &log)
	cases := map[string]string{
		"127.0.0.1:443":                reasonLoopback,
		"[::1]:443":                    reasonLoopback,
		"[::ffff:127.0.0.1]:443":       reasonLoopback,
		"[::127.0.0.1]:443":            reasonLoopback,
		"[64:ff9b::7f00:1]:443":        reasonLoopback,
		"[2002:7f00:1::]:443":          reasonLoopback,
		"[" + teredoLoopback + "]:443": reasonLoopback,
		"[fe80::1%lo]:443":             reasonLinkLocal,
		"0.0.0.0:443":                  reasonUnspecified,
		"[::]:443":                     reasonUnspecified,
		"169.254.169.254:443":          reasonMetadata,
		"100.64.0.1:443":               reasonShared,
		"224.0.0.1:443":                reasonMulticast,
		"10.0.0.1:443":                 reasonPrivate,
		"127.1:443":                    reasonNameInvalid,
		"2130706433:443":               reasonNameInvalid,
		"93.184.216.34:22":             reasonPort,
		"93.184.216.34:0":              reasonPort,
		"noport":                       reasonInvalid,
		"host:http":                    reasonInvalid,
		"host:70000":                   reasonInvalid,
		"[::1]":                        reasonInvalid,
		":443":                         reasonInvalid,
	}
	for hp, want := range cases {
		_, _, err := d.DialContext(context.Background(), "tcp", hp, DialOptions{})
		if got := reasonOf(t, err); got != want {
			t.Errorf("%s: reason %q, want %q", hp, got, want)
		}
	}
	if tried := log.snapshot(); len(tried) != 0 {
		t.Errorf("dialed %v", tried)
	}
	if res := d.Resolver.(*fakeResolver); res.calls.Load() != 0 {
		t.Errorf("resolver called for literals")
	}
}

func TestDialLiteralAllowed(t *testing.T) {
	target, _ := listen(t, "tcp4", "127.0.0.1:0")
	d := &Dialer{Policy: loopbackPolicy(t), Resolver: &fakeResolver{}}
	loopbackOnly(t, d, nil)
	for _, host := range []string{"127.0.0.1", "::ffff:127.0.0.1"} {
		c, remote, err := d.DialContext(context.Background(), "tcp", hostport(host, target.Port()), DialOptions{})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		c.Close()
		if remote != target {
			t.Errorf("%s: connected to %v, want %v (unmapped)", host, remote, target)
		}
	}
}

func TestDialErrors(t *testing.T) {
	d := &Dialer{Resolver: &fakeResolver{err: errors.New("resolver down")}}
	loopbackOnly(t, d, nil)
	if _, _, err := d.DialContext(context.Background(), "udp", "example.test:443", DialOptions{}); err == nil {
		t.Error("udp network accepted")
	}
	_, _, err := d.DialContext(context.Background(), "tcp", "example.test:443", DialOptions{})
	if err == nil || err.Error() != "resolver down" {
		t.Errorf("resolver error = %v", err)
	}
	var refused *Refused
	if errors.As(err, &refused) {
		t.Error("resolver failure reported as a refusal")
	}

	d.Resolver = &fakeResolver{answers: map[string][]netip.Addr{}}
	_, _, err = d.DialContext(context.Background(), "tcp", "empty.test:443", DialOptions{})
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("empty answer: %v", err)
	}
}

func TestDialFamilies(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{
		"dual.test": addrs("127.0.0.1", "::1", "127.0.0.2", "::ffff:127.0.0.3"),
		"v4.test":   addrs("127.0.0.1"),
	}}
	fail := errors.New("test: refused")
	var log dialLog
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), AttemptDelay: time.Hour}
	d.dial = func(_ context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		log.add(local, remote)
		return nil, fail
	}
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	cases := []struct {
		network string
		local   string
		host    string
		want    []netip.AddrPort
	}{
		{"tcp", "", "dual.test", []netip.AddrPort{ap("[::1]:443"), ap("127.0.0.1:443"), ap("127.0.0.2:443"), ap("127.0.0.3:443")}},
		{"tcp4", "", "dual.test", []netip.AddrPort{ap("127.0.0.1:443"), ap("127.0.0.2:443"), ap("127.0.0.3:443")}},
		{"tcp6", "", "dual.test", []netip.AddrPort{ap("[::1]:443")}},
		{"tcp", "127.0.0.9", "dual.test", []netip.AddrPort{ap("127.0.0.1:443"), ap("127.0.0.2:443"), ap("127.0.0.3:443")}},
		{"tcp", "::ffff:127.0.0.9", "dual.test", []netip.AddrPort{ap("127.0.0.1:443"), ap("127.0.0.2:443"), ap("127.0.0.3:443")}},
		{"tcp", "::1", "dual.test", []netip.AddrPort{ap("[::1]:443")}},
		{"tcp", "::1", "v4.test", nil},
		{"tcp6", "", "127.0.0.1", nil},
	}
	for _, c := range cases {
		log = dialLog{}
		var local netip.Addr
		if c.local != "" {
			local = netip.MustParseAddr(c.local)
		}
		_, _, err := d.DialContext(context.Background(), c.network, c.host+":443", DialOptions{LocalAddr: local})
		if err == nil {
			t.Fatalf("%+v: dial succeeded", c)
		}
		got := log.snapshot()
		if len(got) != len(c.want) {
			t.Errorf("%s %s from %q: tried %v, want %v", c.network, c.host, c.local, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %s from %q: tried %v, want %v", c.network, c.host, c.local, got, c.want)
				break
			}
		}
		if c.want != nil && !errors.Is(err, fail) {
			t.Errorf("%+v: error %v, want the first attempt's", c, err)
		}
		if c.want == nil {
			var r *Refused
			if errors.As(err, &r) {
				t.Errorf("%+v: family mismatch reported as a refusal: %v", c, err)
			}
		}
		for _, l := range log.local {
			if l != local.Unmap() {
				t.Errorf("bound to %v, want %v", l, local)
			}
		}
	}
}

func TestInterleave(t *testing.T) {
	in := addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "2001:db8::2")
	got := interleave(in, 80)
	want := []string{"[2001:db8::1]:80", "10.0.0.1:80", "[2001:db8::2]:80", "10.0.0.2:80", "10.0.0.3:80"}
	if len(got) != len(want) {
		t.Fatalf("interleave = %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("interleave = %v, want %v", got, want)
		}
	}
	if got := interleave(addrs("10.0.0.1", "10.0.0.2"), 1); got[0].Addr().String() != "10.0.0.1" || len(got) != 2 {
		t.Errorf("single family: %v", got)
	}
}

func TestDialMaxAttempts(t *testing.T) {
	var many []netip.Addr
	for i := 1; i <= 40; i++ {
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	res := &fakeResolver{answers: map[string][]netip.Addr{"many.test": many}}
	var log dialLog
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t)}
	d.dial = func(_ context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		log.add(local, remote)
		return nil, syscall.ECONNREFUSED
	}
	d.DialContext(context.Background(), "tcp", "many.test:443", DialOptions{})
	if n := len(log.snapshot()); n != DefaultMaxAttempts {
		t.Errorf("tried %d addresses, want %d", n, DefaultMaxAttempts)
	}
	log = dialLog{}
	d.MaxAttempts = 3
	d.DialContext(context.Background(), "tcp", "many.test:443", DialOptions{})
	if n := len(log.snapshot()); n != 3 {
		t.Errorf("tried %d addresses, want 3", n)
	}
}

// trackedConn is one end of a net.Pipe that reports its Close.
type trackedConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func newTrackedConn() *trackedConn {
	a, b := net.Pipe()
	b.Close()
	return &trackedConn{Conn: a, closed: make(chan struct{})}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// The first address black-holes; the second answers. The second attempt
// must start about one attempt delay after the first, win, and the first
// must be cancelled.
func TestHappyEyeballsBlackHole(t *testing.T) {
	const delay = 100 * time.Millisecond
	res := &fakeResolver{answers: map[string][]netip.Addr{"he.test": addrs("::1", "127.0.0.1")}}
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), AttemptDelay: delay}
	var (
		mu      sync.Mutex
		started = map[netip.Addr]time.Time{}
	)
	holeCancelled := make(chan struct{})
	winner := newTrackedConn()
	d.dial = func(ctx context.Context, _ netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		started[remote.Addr()] = time.Now()
		mu.Unlock()
		if remote.Addr().Is6() {
			<-ctx.Done() // a black hole: only cancellation ends it
			close(holeCancelled)
			return nil, ctx.Err()
		}
		return winner, nil
	}
	begin := time.Now()
	c, remote, err := d.DialContext(context.Background(), "tcp", "he.test:443", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(begin)
	if c != winner || remote != netip.MustParseAddrPort("127.0.0.1:443") {
		t.Errorf("got %v from %v, want the IPv4 connection", c, remote)
	}
	select {
	case <-holeCancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the black-holed attempt was not cancelled")
	}
	mu.Lock()
	gap := started[netip.MustParseAddr("127.0.0.1")].Sub(started[netip.MustParseAddr("::1")])
	mu.Unlock()
	if gap < delay || elapsed < delay {
		t.Errorf("second attempt started %v after the first (dial took %v), want at least %v", gap, elapsed, delay)
	}
	if elapsed > 5*time.Second {
		t.Errorf("dial took %v", elapsed)
	}
	select {
	case <-winner.closed:
		t.Error("the winning connection was closed")
	default:
	}
	c.Close()
}

// A failed attempt starts the next one at once, without waiting out the
// attempt delay.
func TestHappyEyeballsFailureStartsNext(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{"he.test": addrs("::1", "127.0.0.1")}}
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), AttemptDelay: time.Hour, Timeout: time.Minute}
	winner := newTrackedConn()
	d.dial = func(_ context.Context, _ netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		if remote.Addr().Is6() {
			return nil, syscall.ECONNREFUSED
		}
		return winner, nil
	}
	begin := time.Now()
	c, _, err := d.DialContext(context.Background(), "tcp", "he.test:443", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if elapsed := time.Since(begin); elapsed > 10*time.Second {
		t.Errorf("dial took %v: the failure did not start the next attempt", elapsed)
	}
}

// The same over real loopback sockets: nothing listens on 127.0.0.2 at the
// port, so the kernel refuses at once and the listener on 127.0.0.1 wins.
func TestHappyEyeballsRealRefusal(t *testing.T) {
	target, seen := listen(t, "tcp4", "127.0.0.1:0")
	res := &fakeResolver{answers: map[string][]netip.Addr{"he.test": addrs("127.0.0.2", "127.0.0.1")}}
	var log dialLog
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), AttemptDelay: time.Hour, Timeout: time.Minute}
	loopbackOnly(t, d, &log)
	c, remote, err := d.DialContext(context.Background(), "tcp", hostport("he.test", target.Port()), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-seen
	if remote != target || len(log.snapshot()) != 2 {
		t.Errorf("connected to %v after %v", remote, log.snapshot())
	}
}

// A connection that completes after another attempt already won is closed.
func TestHappyEyeballsClosesLateWinner(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{"he.test": addrs("::1", "127.0.0.1")}}
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), AttemptDelay: MinAttemptDelay}
	late, winner := newTrackedConn(), newTrackedConn()
	d.dial = func(ctx context.Context, _ netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		if remote.Addr().Is6() {
			<-ctx.Done()
			return late, nil // connected just as the race was decided
		}
		return winner, nil
	}
	c, _, err := d.DialContext(context.Background(), "tcp", "he.test:443", DialOptions{})
	if err != nil || c != winner {
		t.Fatalf("got %v, %v", c, err)
	}
	select {
	case <-late.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("late connection not closed")
	}
	c.Close()
}

func TestDialAllFail(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{"he.test": addrs("127.0.0.1", "::1", "127.0.0.2")}}
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t)}
	first := errors.New("first")
	d.dial = func(_ context.Context, _ netip.Addr, remote netip.AddrPort) (net.Conn, error) {
		if remote.Addr().Is6() {
			return nil, first
		}
		return nil, errors.New("other")
	}
	if _, _, err := d.DialContext(context.Background(), "tcp", "he.test:443", DialOptions{}); !errors.Is(err, first) {
		t.Errorf("err = %v, want the first attempt's error", err)
	}
}

func TestDialTimeout(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{"slow.test": addrs("127.0.0.1", "::1")}}
	d := &Dialer{Resolver: res, Policy: loopbackPolicy(t), Timeout: 50 * time.Millisecond, AttemptDelay: time.Hour}
	d.dial = func(ctx context.Context, _ netip.Addr, _ netip.AddrPort) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	_, _, err := d.DialContext(context.Background(), "tcp", "slow.test:443", DialOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Timeout = time.Minute
	if _, _, err := d.DialContext(ctx, "tcp", "slow.test:443", DialOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestResolveUDP(t *testing.T) {
	res := &fakeResolver{answers: map[string][]netip.Addr{
		"dns.test":  addrs("127.0.0.1", "93.184.216.34", "2606:4700::1111"),
		"evil.test": addrs("169.254.169.254"),
	}}
	d := &Dialer{Resolver: res}
	ctx := context.Background()
	got, err := d.ResolveUDP(ctx, "dns.test:53")
	if err != nil || got != netip.MustParseAddrPort("93.184.216.34:53") {
		t.Errorf("ResolveUDP = %v, %v", got, err)
	}
	got, err = d.ResolveUDPFrom(ctx, "dns.test:5353", netip.MustParseAddr("::1"))
	if err != nil || got != netip.MustParseAddrPort("[2606:4700::1111]:5353") {
		t.Errorf("ResolveUDPFrom(::1) = %v, %v", got, err)
	}
	for hp, want := range map[string]string{
		"evil.test:53":            reasonMetadata,
		"127.0.0.1:53":            reasonLoopback,
		"[::ffff:10.0.0.1]:53":    reasonPrivate,
		"dns.test:0":              reasonPort,
		"dns.test":                reasonInvalid,
		"[64:ff9b::a9fe:a9fe]:53": reasonMetadata,
	} {
		_, err := d.ResolveUDP(ctx, hp)
		if got := reasonOf(t, err); got != want {
			t.Errorf("ResolveUDP(%s) reason %q, want %q", hp, got, want)
		}
	}
	d.Policy = mustPolicy(t, PolicyConfig{UDPPorts: []uint16{53}})
	if _, err := d.ResolveUDP(ctx, "dns.test:54"); reasonOf(t, err) != reasonPort {
		t.Errorf("UDPPorts not applied: %v", err)
	}
}

// NetResolver with an IP literal answers without a DNS query.
func TestNetResolverLiteral(t *testing.T) {
	for _, r := range []NetResolver{{}, {Resolver: &net.Resolver{PreferGo: true}}} {
		got, err := r.LookupNetIP(context.Background(), "127.0.0.1")
		if err != nil || len(got) != 1 || got[0].Unmap() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("LookupNetIP = %v, %v", got, err)
		}
	}
}
