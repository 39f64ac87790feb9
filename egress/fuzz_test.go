package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// assertNotSpecial fails when a, an address the default policy accepted,
// lies in a range it must refuse. It cross-checks with the standard
// library's own predicates so that the test does not only repeat the
// policy's table.
func assertNotSpecial(t *testing.T, what string, a netip.Addr) {
	t.Helper()
	if r := builtinReason(a); r != "" {
		t.Fatalf("%s %v accepted but is in a refused range (%s)", what, a, r)
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		t.Fatalf("%s %v accepted but the standard library calls it special", what, a)
	}
	if a.Is4In6() || a.Zone() != "" {
		t.Fatalf("%s %v is not canonical", what, a)
	}
	if a.Is6() && !pfxGlobalV6.Contains(a) && !pfxNAT64.Contains(a) {
		t.Fatalf("%s %v accepted outside IPv6 global unicast", what, a)
	}
}

// assertAcceptedIsSafe checks that ip, accepted by the default policy, is
// still accepted in its canonical form and in no refused range, and neither
// is the IPv4 address it embeds.
func assertAcceptedIsSafe(t *testing.T, ip netip.Addr) {
	t.Helper()
	a, emb := Canonical(ip)
	assertNotSpecial(t, "address", a)
	if emb.IsValid() {
		assertNotSpecial(t, "embedded address", emb)
		if err := (&Policy{}).CheckAddr(emb); err != nil {
			t.Fatalf("%v accepted but its embedded %v is refused: %v", ip, emb, err)
		}
	}
	if err := (&Policy{}).CheckAddr(a); err != nil {
		t.Fatalf("%v accepted but its canonical form %v is refused: %v", ip, a, err)
	}
	if a2, emb2 := Canonical(a); a2 != a || emb2 != emb {
		t.Fatalf("Canonical is not idempotent on %v: %v, %v then %v, %v", ip, a, emb, a2, emb2)
	}
}

// fuzzAddrs reads the bytes of s as a list of addresses, alternating 16-byte
// IPv6 and 4-byte IPv4 ones, for the fuzz resolver's answer.
func fuzzAddrs(s string) []netip.Addr {
	var out []netip.Addr
	b := []byte(s)
	for len(b) >= 4 && len(out) < 8 {
		if len(b) >= 16 && len(out)%2 == 0 {
			out = append(out, netip.AddrFrom16([16]byte(b[:16])))
			b = b[16:]
			continue
		}
		out = append(out, netip.AddrFrom4([4]byte(b[:4])))
		b = b[4:]
	}
	return out
}

type fuzzResolver struct{ answer []netip.Addr }

func (r fuzzResolver) LookupNetIP(context.Context, string) ([]netip.Addr, error) {
	return r.answer, nil
}

// FuzzCheckHost feeds arbitrary destinations through parsing, the policy
// and a Dialer whose resolver answers with addresses made of the input's
// bytes. Nothing may panic, and every address the default policy accepts,
// or the Dialer tries to connect to, must be outside every refused range.
// No connection is made: the Dialer's connect step only records.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{
		"example.com:443", "127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80",
		"[64:ff9b::7f00:1]:443", "[2002:7f00:1::]:443", "[" + teredoLoopback + "]:443",
		"[fe80::1%eth0]:443", "169.254.169.254:80", "127.1:80", "0x7f000001:443",
		"[2606:4700::1111]:443", "93.184.216.34:443",
	} {
		f.Add(s)
	}
	pol := &Policy{}
	errStop := errors.New("fuzz: no connection")
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := SplitHostPort(s)
		if err != nil {
			host = s
		}
		pol.CheckPort(port, true)
		pol.CheckPort(port, false)
		nameErr := pol.CheckName(host)
		if ip, ok := parseLiteral(host); ok {
			if err := pol.CheckAddr(ip); err == nil {
				assertAcceptedIsSafe(t, ip)
			}
			if nameErr == nil {
				assertAcceptedIsSafe(t, ip)
			}
		}
		for _, ip := range fuzzAddrs(s) {
			if pol.CheckAddr(ip) == nil {
				assertAcceptedIsSafe(t, ip)
			}
		}

		d := &Dialer{
			Resolver:     fuzzResolver{answer: fuzzAddrs(s)},
			Policy:       &Policy{allowAllPorts: true},
			Timeout:      time.Second,
			AttemptDelay: time.Hour,
		}
		d.dial = func(_ context.Context, _ netip.Addr, remote netip.AddrPort) (net.Conn, error) {
			if pol.CheckAddr(remote.Addr()) != nil {
				t.Fatalf("dialer tried refused address %v for %q", remote, s)
			}
			assertAcceptedIsSafe(t, remote.Addr())
			return nil, errStop
		}
		for _, hp := range []string{s, net.JoinHostPort("fuzz.test", "443")} {
			_, _, err := d.DialContext(context.Background(), "tcp", hp, DialOptions{})
			if err == nil {
				t.Fatalf("dial of %q succeeded without a connection", hp)
			}
		}
	})
}
