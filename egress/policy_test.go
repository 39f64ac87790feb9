package egress

import (
	"errors"
	"net/netip"
	"testing"
)

func mustPolicy(t *testing.T, cfg PolicyConfig) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// reasonOf returns the Reason of a *Refused, "" for nil, and fails the test
// for any other error.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var r *Refused
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T) is not a *Refused", err, err)
	}
	return r.Reason
}

// A Teredo address whose client (the last 32 bits, inverted) is 127.0.0.1;
// the server part is 65.54.227.120.
const teredoLoopback = "2001:0:4136:e378:8000:63bf:80ff:fffe"

func TestCheckAddrDefaultDeny(t *testing.T) {
	cases := []struct{ addr, reason string }{
		// loopback, every form
		{"127.0.0.1", reasonLoopback},
		{"127.255.255.254", reasonLoopback},
		{"::1", reasonLoopback},
		{"::ffff:127.0.0.1", reasonLoopback},
		{"::127.0.0.1", reasonLoopback},
		{"::ffff:0:127.0.0.1", reasonLoopback},
		{"64:ff9b::7f00:1", reasonLoopback},
		{"2002:7f00:1::", reasonLoopback},
		{"2002:7f00:1:1234::5", reasonLoopback},
		{teredoLoopback, reasonLoopback},
		// unspecified
		{"0.0.0.0", reasonUnspecified},
		{"0.1.2.3", reasonUnspecified},
		{"::", reasonUnspecified},
		{"::ffff:0.0.0.0", reasonUnspecified},
		// private
		{"10.0.0.1", reasonPrivate},
		{"172.16.0.1", reasonPrivate},
		{"172.31.255.255", reasonPrivate},
		{"192.168.1.1", reasonPrivate},
		{"::ffff:10.0.0.1", reasonPrivate},
		{"2002:a00:1::", reasonPrivate},
		{"64:ff9b::c0a8:101", reasonPrivate},
		{"fc00::1", reasonUniqueLocal},
		{"fd12:3456::1", reasonUniqueLocal},
		// link-local and metadata
		{"169.254.169.254", reasonMetadata},
		{"::ffff:169.254.169.254", reasonMetadata},
		{"64:ff9b::a9fe:a9fe", reasonMetadata},
		{"fd00:ec2::254", reasonMetadata},
		{"169.254.1.1", reasonLinkLocal},
		{"fe80::1", reasonLinkLocal},
		{"fe80::1%eth0", reasonLinkLocal},
		{"febf::1", reasonLinkLocal},
		// shared address space
		{"100.64.0.1", reasonShared},
		{"100.127.255.254", reasonShared},
		// multicast, broadcast, reserved
		{"224.0.0.1", reasonMulticast},
		{"239.255.255.250", reasonMulticast},
		{"ff02::1", reasonMulticast},
		{"ff05::2", reasonMulticast},
		{"255.255.255.255", reasonBroadcast},
		{"240.0.0.1", reasonReserved},
		{"192.88.99.1", reasonReserved},
		{"100::1", reasonReserved},
		{"::5db8:d822", reasonReserved},
		{"4000::1", reasonReserved},
		{"5f00::1", reasonReserved},
		// benchmarking, documentation, special
		{"198.18.0.1", reasonBenchmarking},
		{"198.19.255.255", reasonBenchmarking},
		{"2001:2::1", reasonBenchmarking},
		{"192.0.2.1", reasonDocumentation},
		{"198.51.100.7", reasonDocumentation},
		{"203.0.113.9", reasonDocumentation},
		{"2001:db8::1", reasonDocumentation},
		{"3fff::1", reasonDocumentation},
		{"192.0.0.8", reasonSpecial},
		{"fec0::1", reasonSiteLocal},
		{"64:ff9b:1::5db8:d822", reasonNAT64Local},
	}
	for _, pol := range []*Policy{nil, {}, mustPolicy(t, PolicyConfig{})} {
		for _, c := range cases {
			got := reasonOf(t, pol.CheckAddr(netip.MustParseAddr(c.addr)))
			if got != c.reason {
				t.Errorf("CheckAddr(%s) = %q, want %q", c.addr, got, c.reason)
			}
		}
	}
}

// Policy checks only: nothing here sends a packet.
func TestCheckAddrPublicPasses(t *testing.T) {
	for _, s := range []string{
		"93.184.216.34",
		"8.8.8.8",
		"1.1.1.1",
		"172.32.0.1",  // just past 172.16/12
		"100.128.0.1", // just past 100.64/10
		"198.20.0.1",  // just past 198.18/15
		"169.255.0.1", // just past link-local
		"2606:4700::1111",
		"2a00:1450:4001::200e",
		"::ffff:93.184.216.34",
		"64:ff9b::5db8:d822",                   // NAT64 of a public address
		"2002:5db8:d822::1",                    // 6to4 of a public address
		"2001:0:4136:e378:8000:63bf:a247:27dd", // Teredo, client 93.184.216.34
	} {
		if err := (&Policy{}).CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	if r := reasonOf(t, (&Policy{}).CheckAddr(netip.Addr{})); r != reasonInvalid {
		t.Errorf("CheckAddr(zero Addr) = %q", r)
	}
}

func TestCanonical(t *testing.T) {
	cases := []struct{ in, addr, emb string }{
		{"127.0.0.1", "127.0.0.1", ""},
		{"::ffff:127.0.0.1", "127.0.0.1", ""},
		{"fe80::1%eth0", "fe80::1", ""},
		{"::1", "::1", ""},
		{"::", "::", ""},
		{"::127.0.0.1", "::7f00:1", "127.0.0.1"},
		{"::ffff:0:10.0.0.1", "::ffff:0:a00:1", "10.0.0.1"},
		{"64:ff9b::7f00:1", "64:ff9b::7f00:1", "127.0.0.1"},
		{"64:ff9b:1::a00:1", "64:ff9b:1::a00:1", "10.0.0.1"},
		{"2002:7f00:1::", "2002:7f00:1::", "127.0.0.1"},
		{teredoLoopback, teredoLoopback, "127.0.0.1"},
		{"2606:4700::1111", "2606:4700::1111", ""},
	}
	for _, c := range cases {
		a, emb := Canonical(netip.MustParseAddr(c.in))
		if a.String() != c.addr {
			t.Errorf("Canonical(%s) addr = %s, want %s", c.in, a, c.addr)
		}
		gotEmb := ""
		if emb.IsValid() {
			gotEmb = emb.String()
		}
		if gotEmb != c.emb {
			t.Errorf("Canonical(%s) embedded = %q, want %q", c.in, gotEmb, c.emb)
		}
	}
}

func TestCIDRPrecedence(t *testing.T) {
	check := func(t *testing.T, p *Policy, addr, want string) {
		t.Helper()
		if got := reasonOf(t, p.CheckAddr(netip.MustParseAddr(addr))); got != want {
			t.Errorf("CheckAddr(%s) = %q, want %q", addr, got, want)
		}
	}
	t.Run("allow punches a hole", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{AllowCIDRs: prefixes("10.1.0.0/16")})
		check(t, p, "10.1.2.3", "")
		check(t, p, "::ffff:10.1.2.3", "")
		check(t, p, "64:ff9b::a01:203", "") // NAT64 of an allowed address
		check(t, p, "10.2.0.1", reasonPrivate)
		check(t, p, "127.0.0.1", reasonLoopback)
		// The hole covers the embedded address, not the IPv6 wrapper
		// that is refused in its own right.
		check(t, p, "::a01:203", reasonReserved)
	})
	t.Run("deny beats allow", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{
			AllowCIDRs: prefixes("10.1.0.0/16"),
			DenyCIDRs:  prefixes("10.1.2.0/24"),
		})
		check(t, p, "10.1.2.3", reasonAddrDenied)
		check(t, p, "10.1.3.3", "")
	})
	t.Run("deny beats allow private", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{AllowPrivate: true, DenyCIDRs: prefixes("127.0.0.0/8", "fd00::/8")})
		check(t, p, "127.0.0.1", reasonAddrDenied)
		check(t, p, "::ffff:127.0.0.1", reasonAddrDenied)
		check(t, p, "2002:7f00:1::", reasonAddrDenied)
		check(t, p, "fd00::1", reasonAddrDenied)
		check(t, p, "10.0.0.1", "")
		check(t, p, "169.254.169.254", "")
		check(t, p, "::1", "")
	})
	t.Run("deny public, in every wrapper", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{DenyCIDRs: prefixes("::ffff:93.184.216.0/120")})
		check(t, p, "93.184.216.34", reasonAddrDenied)
		check(t, p, "::ffff:93.184.216.34", reasonAddrDenied)
		check(t, p, "64:ff9b::5db8:d822", reasonAddrDenied)
		check(t, p, "2002:5db8:d822::", reasonAddrDenied)
		check(t, p, "93.184.217.1", "")
	})
	t.Run("local-use NAT64", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{AllowCIDRs: prefixes("64:ff9b:1::/48")})
		check(t, p, "64:ff9b:1::5db8:d822", "")
		check(t, p, "64:ff9b:1::7f00:1", reasonLoopback)
	})
}

func TestNewPolicyErrors(t *testing.T) {
	bad := []PolicyConfig{
		{AllowCIDRs: []netip.Prefix{{}}},
		{DenyCIDRs: []netip.Prefix{{}}},
		{AllowDomains: []string{"*"}},
		{AllowDomains: []string{"*."}},
		{DenyDomains: []string{"a.*.com"}},
		{DenyDomains: []string{"**.example.com"}},
		{DenyDomains: []string{"foo*.example.com"}},
		{DenyDomains: []string{"exa mple.com"}},
		{DenyDomains: []string{""}},
		{ConnectPorts: []uint16{443, 0}},
		{HTTPPorts: []uint16{0}},
		{UDPPorts: []uint16{0}},
	}
	for i, cfg := range bad {
		if _, err := NewPolicy(cfg); err == nil {
			t.Errorf("case %d: NewPolicy(%+v) succeeded", i, cfg)
		}
	}
}

func TestCheckNameDomains(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{
		AllowDomains: []string{"*.Example.com", "api.other.org."},
		DenyDomains:  []string{"bad.example.com", "*.internal.example.com"},
	})
	cases := []struct{ host, reason string }{
		{"sub.example.com", ""},
		{"a.b.example.com", ""},
		{"A.B.Example.COM.", ""},
		{"internal.example.com", ""},
		{"example.com", reasonDomainNotAllowed},
		{"example.com.", reasonDomainNotAllowed},
		{"notexample.com", reasonDomainNotAllowed},
		{"bad.example.com", reasonDomainDenied},
		{"BAD.example.com.", reasonDomainDenied},
		{"x.internal.example.com", reasonDomainDenied},
		{"a.b.internal.example.com", reasonDomainDenied},
		{"api.other.org", ""},
		{"API.other.org.", ""},
		{"x.api.other.org", reasonDomainNotAllowed},
		{"other.org", reasonDomainNotAllowed},
		// With an allow list, IP literals must be in AllowCIDRs.
		{"93.184.216.34", reasonLiteralNotAllowed},
		{"[2606:4700::1111]", reasonLiteralNotAllowed},
		{"127.0.0.1", reasonLoopback},
	}
	for _, c := range cases {
		if got := reasonOf(t, p.CheckName(c.host)); got != c.reason {
			t.Errorf("CheckName(%q) = %q, want %q", c.host, got, c.reason)
		}
	}

	lit := mustPolicy(t, PolicyConfig{
		AllowDomains: []string{"example.com"},
		AllowCIDRs:   prefixes("93.184.216.0/24"),
	})
	if err := lit.CheckName("93.184.216.34"); err != nil {
		t.Errorf("literal inside AllowCIDRs: %v", err)
	}
	if err := lit.CheckName("64:ff9b::5db8:d822"); err != nil {
		t.Errorf("NAT64 literal of an address inside AllowCIDRs: %v", err)
	}
	if got := reasonOf(t, lit.CheckName("8.8.8.8")); got != reasonLiteralNotAllowed {
		t.Errorf("literal outside AllowCIDRs: %q", got)
	}
}

func TestCheckNameDenyOnly(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{DenyDomains: []string{"*.corp", "metadata.google.internal"}})
	for host, want := range map[string]string{
		"db.corp":                   reasonDomainDenied,
		"corp":                      "",
		"metadata.google.internal.": reasonDomainDenied,
		"www.example.com":           "",
		"93.184.216.34":             "",
	} {
		if got := reasonOf(t, p.CheckName(host)); got != want {
			t.Errorf("CheckName(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestCheckNameSyntax(t *testing.T) {
	long := ""
	for i := 0; i < 64; i++ {
		long += "a"
	}
	invalid := []string{
		"", ".", "a..b", ".a", "exa mple.com", "bücher.de", "a/b", "a:b",
		"evil.com\x00.good.com", long + ".com",
		// Numeric last labels: C resolvers read these as IPv4 addresses.
		"127.1", "2130706433", "0x7f.1", "0x7F000001", "evil.0x7f", "0177.0.0.1", "1.2.3.4.5",
	}
	for _, h := range invalid {
		if got := reasonOf(t, (&Policy{}).CheckName(h)); got != reasonNameInvalid {
			t.Errorf("CheckName(%q) = %q, want %q", h, got, reasonNameInvalid)
		}
	}
	valid := []string{"example.com", "xn--bcher-kva.de", "_srv.example.com", "a-b.c", "localhost", "0x.example", "1e100.net", "cafe"}
	for _, h := range valid {
		if err := (&Policy{}).CheckName(h); err != nil {
			t.Errorf("CheckName(%q) = %v", h, err)
		}
	}
}

func TestCheckPort(t *testing.T) {
	type pc struct {
		port   uint16
		tunnel bool
		ok     bool
	}
	run := func(t *testing.T, p *Policy, cases []pc) {
		t.Helper()
		for _, c := range cases {
			err := p.CheckPort(c.port, c.tunnel)
			if (err == nil) != c.ok {
				t.Errorf("CheckPort(%d, tunnel=%v) = %v, want ok=%v", c.port, c.tunnel, err, c.ok)
			}
			if err != nil && reasonOf(t, err) != reasonPort {
				t.Errorf("reason %q", reasonOf(t, err))
			}
		}
	}
	t.Run("default", func(t *testing.T) {
		cases := []pc{{443, true, true}, {80, true, false}, {22, true, false}, {0, true, false},
			{80, false, true}, {25, false, true}, {8080, false, true}, {0, false, false}}
		run(t, nil, cases)
		run(t, &Policy{}, cases)
	})
	t.Run("lists", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{ConnectPorts: []uint16{443, 8443}, HTTPPorts: []uint16{80, 8080}})
		run(t, p, []pc{{443, true, true}, {8443, true, true}, {80, true, false},
			{80, false, true}, {8080, false, true}, {443, false, false}})
	})
	t.Run("all ports", func(t *testing.T) {
		p := mustPolicy(t, PolicyConfig{AllowAllPorts: true, ConnectPorts: []uint16{443}})
		run(t, p, []pc{{22, true, true}, {65535, true, true}, {0, true, false}, {0, false, false}})
	})
	t.Run("udp", func(t *testing.T) {
		if err := (&Policy{}).checkUDPPort(5353); err != nil {
			t.Errorf("default UDP port: %v", err)
		}
		if (&Policy{}).checkUDPPort(0) == nil {
			t.Error("UDP port 0 allowed")
		}
		p := mustPolicy(t, PolicyConfig{UDPPorts: []uint16{53, 443}})
		if p.checkUDPPort(53) != nil || p.checkUDPPort(54) == nil {
			t.Error("UDPPorts not applied")
		}
	})
}

func TestRefusedError(t *testing.T) {
	err := (&Policy{}).CheckAddr(netip.MustParseAddr("127.0.0.1"))
	if err.Error() != "egress: destination is a loopback address" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestSplitHostPort(t *testing.T) {
	good := []struct {
		in   string
		host string
		port uint16
	}{
		{"example.com:443", "example.com", 443},
		{"[::1]:80", "::1", 80},
		{"[::ffff:127.0.0.1]:8080", "::ffff:127.0.0.1", 8080},
		{"[fe80::1%eth0]:1", "fe80::1%eth0", 1},
		{"1.2.3.4:0", "1.2.3.4", 0},
		{"h:65535", "h", 65535},
		{"h:00443", "h", 443},
	}
	for _, c := range good {
		h, p, err := SplitHostPort(c.in)
		if err != nil || h != c.host || p != c.port {
			t.Errorf("SplitHostPort(%q) = %q, %d, %v", c.in, h, p, err)
		}
	}
	for _, in := range []string{"", "example.com", "example.com:", ":443", "h:http", "h:65536",
		"h:+80", "h:-1", "h:1e3", "h:000443", "::1:443", "[::1]", "[::1]:", "h:80:80"} {
		if h, p, err := SplitHostPort(in); err == nil {
			t.Errorf("SplitHostPort(%q) = %q, %d, nil; want an error", in, h, p)
		}
	}
}
