package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DefaultConnectPort is the only port a tunnel (CONNECT, SOCKS5 CONNECT) may
// reach when PolicyConfig.ConnectPorts is empty: HTTPS.
const DefaultConnectPort uint16 = 443

// Refusal reasons. Each is short, names no internal detail and is safe to
// send back to the client (in a status line, a header or a log line).
const (
	reasonInvalid           = "destination is invalid"
	reasonNameInvalid       = "destination name is invalid"
	reasonDomainDenied      = "destination domain denied"
	reasonDomainNotAllowed  = "destination domain not allowed"
	reasonLiteralNotAllowed = "destination address not allowed"
	reasonAddrDenied        = "destination address denied"
	reasonPort              = "destination port not allowed"
	reasonLoopback          = "destination is a loopback address"
	reasonUnspecified       = "destination is an unspecified address"
	reasonPrivate           = "destination is a private address"
	reasonUniqueLocal       = "destination is a unique local address"
	reasonLinkLocal         = "destination is a link-local address"
	reasonMetadata          = "destination is a cloud metadata address"
	reasonShared            = "destination is a shared (CGNAT) address"
	reasonMulticast         = "destination is a multicast address"
	reasonBroadcast         = "destination is a broadcast address"
	reasonReserved          = "destination is a reserved address"
	reasonBenchmarking      = "destination is a benchmarking address"
	reasonDocumentation     = "destination is a documentation address"
	reasonSpecial           = "destination is a special-purpose address"
	reasonSiteLocal         = "destination is a site-local address"
	reasonNAT64Local        = "destination is a local-use NAT64 address"
)

// Refused is the error for a destination the Policy does not allow. Reason
// is a short phrase such as "destination is a loopback address" or
// "destination port not allowed": it carries no internal detail and may be
// sent to the client as it is, for example in a response header. Callers
// tell refusals from connection failures with errors.As.
type Refused struct {
	// Reason says why, in a few words safe to show to the client.
	Reason string
}

// Error returns the reason prefixed with "egress: ".
func (r *Refused) Error() string { return "egress: " + r.Reason }

func refuse(reason string) error { return &Refused{Reason: reason} }

// PolicyConfig describes a Policy. The zero value is the safe default: no
// loopback, private or other special-purpose address, tunnels only to port
// 443, forwarded requests and UDP to any port but 0, any name.
type PolicyConfig struct {
	// AllowPrivate turns off the built-in list of refused address ranges
	// (loopback, RFC 1918, link-local, and the rest listed on CheckAddr).
	// DenyCIDRs still apply. Meant for a proxy that fronts a private
	// network on purpose.
	AllowPrivate bool

	// AllowCIDRs punch holes in the built-in refused ranges, for example
	// 10.1.0.0/16 to reach one internal network and nothing else private.
	// They do not restrict anything by themselves. When AllowDomains is
	// set, they are also the only way an IP-literal destination passes.
	AllowCIDRs []netip.Prefix

	// DenyCIDRs are refused always, before anything else is considered:
	// they win over AllowCIDRs and AllowPrivate.
	DenyCIDRs []netip.Prefix

	// AllowDomains, when not empty, turns names into an allow list: a name
	// must match one entry, and an IP-literal destination must lie in
	// AllowCIDRs. Entries are exact names ("api.example.com") or wildcards
	// ("*.example.com", which matches sub.example.com and a.b.example.com
	// but not example.com). Matching ignores case and one trailing dot.
	// A matching name still has its addresses checked after resolution.
	AllowDomains []string

	// DenyDomains are names refused before resolution, in the same syntax
	// as AllowDomains. They win over AllowDomains.
	DenyDomains []string

	// ConnectPorts are the ports a tunnel (CONNECT, SOCKS5 CONNECT) may
	// reach. Empty means DefaultConnectPort only.
	ConnectPorts []uint16

	// HTTPPorts are the ports a request Weir forwards itself (HTTP
	// absolute-form) may reach. Empty means every port but 0.
	HTTPPorts []uint16

	// UDPPorts are the ports UDP traffic (SOCKS5 UDP ASSOCIATE, MASQUE)
	// may reach. Empty means every port but 0.
	UDPPorts []uint16

	// AllowAllPorts lets tunnels, forwarded requests and UDP reach every
	// port but 0, whatever the port lists say.
	AllowAllPorts bool
}

// Policy decides which destinations Weir may connect to on behalf of a
// client. Build one with NewPolicy; the zero value (and a nil *Policy) is the
// default policy of a zero PolicyConfig. A Policy is immutable and safe for
// concurrent use.
type Policy struct {
	allowPrivate  bool
	allowCIDRs    []netip.Prefix
	denyCIDRs     []netip.Prefix
	allowExact    map[string]struct{}
	allowWild     map[string]struct{}
	denyExact     map[string]struct{}
	denyWild      map[string]struct{}
	allowNames    bool
	connectPorts  []uint16
	httpPorts     []uint16
	udpPorts      []uint16
	allowAllPorts bool
}

// NewPolicy checks cfg and builds its Policy. It fails on an invalid prefix,
// a malformed domain pattern or a port 0 in a port list.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	p := &Policy{allowPrivate: cfg.AllowPrivate, allowAllPorts: cfg.AllowAllPorts}
	var err error
	if p.allowCIDRs, err = normalizePrefixes("AllowCIDRs", cfg.AllowCIDRs); err != nil {
		return nil, err
	}
	if p.denyCIDRs, err = normalizePrefixes("DenyCIDRs", cfg.DenyCIDRs); err != nil {
		return nil, err
	}
	if p.allowExact, p.allowWild, err = compileDomains("AllowDomains", cfg.AllowDomains); err != nil {
		return nil, err
	}
	if p.denyExact, p.denyWild, err = compileDomains("DenyDomains", cfg.DenyDomains); err != nil {
		return nil, err
	}
	p.allowNames = len(cfg.AllowDomains) > 0
	if p.connectPorts, err = copyPorts("ConnectPorts", cfg.ConnectPorts); err != nil {
		return nil, err
	}
	if p.httpPorts, err = copyPorts("HTTPPorts", cfg.HTTPPorts); err != nil {
		return nil, err
	}
	if p.udpPorts, err = copyPorts("UDPPorts", cfg.UDPPorts); err != nil {
		return nil, err
	}
	return p, nil
}

// normalizePrefixes masks each prefix and rewrites IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) as the IPv4 prefix they cover, since addresses are
// unmapped before they are compared.
func normalizePrefixes(field string, in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, pfx := range in {
		if !pfx.IsValid() {
			return nil, fmt.Errorf("egress: %s: invalid prefix %q", field, pfx.String())
		}
		a := pfx.Addr().WithZone("")
		bits := pfx.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out, nil
}

func compileDomains(field string, in []string) (exact, wild map[string]struct{}, err error) {
	exact = make(map[string]struct{})
	wild = make(map[string]struct{})
	for _, d := range in {
		name := normalizeName(d)
		isWild := strings.HasPrefix(name, "*.")
		if isWild {
			name = name[2:]
		}
		if !validName(name) || strings.Contains(name, "*") {
			return nil, nil, fmt.Errorf("egress: %s: invalid domain pattern %q", field, d)
		}
		if isWild {
			wild[name] = struct{}{}
		} else {
			exact[name] = struct{}{}
		}
	}
	return exact, wild, nil
}

func copyPorts(field string, in []uint16) ([]uint16, error) {
	if len(in) == 0 {
		return nil, nil
	}
	for _, port := range in {
		if port == 0 {
			return nil, errors.New("egress: " + field + ": port 0 is not a destination port")
		}
	}
	return append([]uint16(nil), in...), nil
}

// CheckPort reports whether port may be reached. tunnel is true for a
// tunnel (CONNECT, SOCKS5 CONNECT), checked against ConnectPorts (443 by
// default); false for a request Weir forwards itself, checked against
// HTTPPorts (any port by default). Port 0 is always refused.
func (p *Policy) CheckPort(port uint16, tunnel bool) error {
	if tunnel {
		return p.checkPortIn(port, p.tunnelPorts(), true)
	}
	return p.checkPortIn(port, p.httpPortList(), false)
}

func (p *Policy) tunnelPorts() []uint16 {
	if p == nil {
		return nil
	}
	return p.connectPorts
}

func (p *Policy) httpPortList() []uint16 {
	if p == nil {
		return nil
	}
	return p.httpPorts
}

// checkUDPPort checks a UDP destination port against UDPPorts.
func (p *Policy) checkUDPPort(port uint16) error {
	var list []uint16
	if p != nil {
		list = p.udpPorts
	}
	return p.checkPortIn(port, list, false)
}

// checkPortIn checks port against list. An empty list allows every port
// unless emptyMeansDefault, in which case it allows DefaultConnectPort only.
func (p *Policy) checkPortIn(port uint16, list []uint16, emptyMeansDefault bool) error {
	if port == 0 {
		return refuse(reasonPort)
	}
	if p != nil && p.allowAllPorts {
		return nil
	}
	if len(list) == 0 {
		if !emptyMeansDefault || port == DefaultConnectPort {
			return nil
		}
		return refuse(reasonPort)
	}
	for _, q := range list {
		if q == port {
			return nil
		}
	}
	return refuse(reasonPort)
}

// CheckName checks a destination host before it is resolved: its syntax,
// then DenyDomains, then AllowDomains. The host may carry one trailing dot
// and any case. A name whose last label is numeric ("127.1", "2130706433",
// "0x7f.1") is refused as invalid: C resolvers read such names as IPv4
// addresses, and no real top-level domain is numeric.
//
// CheckName also accepts an IP literal (with or without brackets): it is
// checked with CheckAddr, and when AllowDomains is set it must also lie in
// AllowCIDRs.
func (p *Policy) CheckName(host string) error {
	if ip, ok := parseLiteral(host); ok {
		return p.checkLiteral(ip)
	}
	name := normalizeName(host)
	if !validName(name) || numericTLD(name) {
		return refuse(reasonNameInvalid)
	}
	if p == nil {
		return nil
	}
	if matchDomain(name, p.denyExact, p.denyWild) {
		return refuse(reasonDomainDenied)
	}
	if p.allowNames && !matchDomain(name, p.allowExact, p.allowWild) {
		return refuse(reasonDomainNotAllowed)
	}
	return nil
}

// checkLiteral checks an address the client wrote itself (no name).
func (p *Policy) checkLiteral(ip netip.Addr) error {
	if err := p.CheckAddr(ip); err != nil {
		return err
	}
	if p != nil && p.allowNames {
		a, emb := Canonical(ip)
		if !containsAny(p.allowCIDRs, a) && !(emb.IsValid() && containsAny(p.allowCIDRs, emb)) {
			return refuse(reasonLiteralNotAllowed)
		}
	}
	return nil
}

// parseLiteral parses host as an IP address, with or without the brackets
// of an IPv6 literal.
func parseLiteral(host string) (netip.Addr, bool) {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	return ip, err == nil
}

// normalizeName lowercases ASCII letters and drops one trailing dot.
func normalizeName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// validName reports whether name (already normalized) is a host name Weir
// will resolve: 1 to 253 bytes of dot-separated labels of 1 to 63 bytes,
// each made of lowercase letters, digits, '-' and '_'. Non-ASCII names must
// arrive in their A-label (punycode) form.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// numericTLD reports whether the last label of name is all digits or a
// 0x-prefixed hexadecimal number: the shapes inet_aton reads as part of an
// IPv4 address.
func numericTLD(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		for i := 0; i < len(last); i++ {
			c := last[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if c := last[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// matchDomain reports whether name equals an exact entry or lies strictly
// below a wildcard entry (stored without its "*.").
func matchDomain(name string, exact, wild map[string]struct{}) bool {
	if _, ok := exact[name]; ok {
		return true
	}
	if len(wild) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if _, ok := wild[name[i+1:]]; ok {
				return true
			}
		}
	}
	return false
}

// CheckAddr checks a resolved (or literal) destination address.
//
// The address is first canonicalised (see Canonical): the zone is dropped,
// an IPv4-mapped address becomes IPv4, and the IPv4 address embedded by an
// IPv6 transition form (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32) is checked as IPv4 as
// well as the IPv6 address itself.
//
// Then, in order: an address (or embedded address) in DenyCIDRs is refused.
// Unless AllowPrivate is set, an address in one of these ranges is refused
// unless it lies in AllowCIDRs:
//
//	loopback        127.0.0.0/8, ::1
//	unspecified     0.0.0.0/8, ::
//	private         10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16
//	unique local    fc00::/7
//	link-local      169.254.0.0/16, fe80::/10
//	cloud metadata  169.254.169.254, fd00:ec2::254
//	shared (CGNAT)  100.64.0.0/10
//	multicast       224.0.0.0/4, ff00::/8
//	broadcast       255.255.255.255
//	reserved        240.0.0.0/4, 192.88.99.0/24, 100::/64, and every IPv6
//	                address outside 2000::/3 not listed here (except the
//	                NAT64 prefix 64:ff9b::/96)
//	benchmarking    198.18.0.0/15, 2001:2::/48
//	documentation   192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//	                2001:db8::/32, 3fff::/20
//	special-purpose 192.0.0.0/24
//	site-local      fec0::/10
//	local NAT64     64:ff9b:1::/48
//
// For 64:ff9b:1::/48, whose layout each network chooses, the IPv4 address
// is read from the last 32 bits (the /96 layout).
func (p *Policy) CheckAddr(ip netip.Addr) error {
	a, emb := Canonical(ip)
	if !a.IsValid() {
		return refuse(reasonInvalid)
	}
	if p != nil && len(p.denyCIDRs) > 0 {
		if containsAny(p.denyCIDRs, a) || emb.IsValid() && containsAny(p.denyCIDRs, emb) {
			return refuse(reasonAddrDenied)
		}
	}
	if p != nil && p.allowPrivate {
		return nil
	}
	var allow []netip.Prefix
	if p != nil {
		allow = p.allowCIDRs
	}
	if emb.IsValid() {
		if r := builtinReason(emb); r != "" && !containsAny(allow, emb) {
			return refuse(r)
		}
	}
	if r := builtinReason(a); r != "" && !containsAny(allow, a) {
		return refuse(r)
	}
	return nil
}

func containsAny(list []netip.Prefix, a netip.Addr) bool {
	for _, pfx := range list {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes used to find an IPv4 address embedded in an IPv6 one.
var (
	pfxCompat    = netip.MustParsePrefix("::/96")           // IPv4-compatible (RFC 4291, deprecated)
	pfxSIIT      = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765)
	pfxNAT64     = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 (RFC 6052)
	pfxNAT64L    = netip.MustParsePrefix("64:ff9b:1::/48")  // local-use NAT64 (RFC 8215)
	pfx6to4      = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056)
	pfxTeredo    = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380)
	pfxGlobalV6  = netip.MustParsePrefix("2000::/3")        // IPv6 global unicast
	addrV6Zero   = netip.IPv6Unspecified()
	addrV6Loopbk = netip.IPv6Loopback()
)

// Canonical returns the form of ip that Policy checks, and the IPv4 address
// embedded in it by an IPv6 transition mechanism, if any (embedded is the
// zero Addr when there is none). addr is ip without its zone and, when ip is
// IPv4-mapped (::ffff:a.b.c.d), unmapped to plain IPv4. embedded is read
// from:
//
//	::a.b.c.d          IPv4-compatible (not :: and ::1)
//	::ffff:0:a.b.c.d   IPv4-translated
//	64:ff9b::a.b.c.d   NAT64, well-known prefix
//	64:ff9b:1::/48     NAT64, local use: the last 32 bits
//	2002:AABB:CCDD::   6to4: bits 16 to 47
//	2001:0::/32        Teredo: the last 32 bits, inverted (the client)
func Canonical(ip netip.Addr) (addr, embedded netip.Addr) {
	addr = ip.WithZone("").Unmap()
	if !addr.Is6() {
		return addr, netip.Addr{}
	}
	b := addr.As16()
	var v4 [4]byte
	switch {
	case pfxCompat.Contains(addr):
		if addr == addrV6Zero || addr == addrV6Loopbk {
			return addr, netip.Addr{}
		}
		copy(v4[:], b[12:])
	case pfxSIIT.Contains(addr), pfxNAT64.Contains(addr), pfxNAT64L.Contains(addr):
		copy(v4[:], b[12:])
	case pfx6to4.Contains(addr):
		copy(v4[:], b[2:6])
	case pfxTeredo.Contains(addr):
		for i := range v4 {
			v4[i] = ^b[12+i]
		}
	default:
		return addr, netip.Addr{}
	}
	return addr, netip.AddrFrom4(v4)
}

type category struct {
	prefix netip.Prefix
	reason string
}

func categories(reason string, prefixes ...string) []category {
	out := make([]category, len(prefixes))
	for i, s := range prefixes {
		out[i] = category{netip.MustParsePrefix(s), reason}
	}
	return out
}

func concat(lists ...[]category) []category {
	var out []category
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// The built-in refused ranges, most specific first so that the reason names
// the narrowest category (metadata before link-local, broadcast before
// reserved).
var (
	builtinV4 = concat(
		categories(reasonLoopback, "127.0.0.0/8"),
		categories(reasonPrivate, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
		categories(reasonMetadata, "169.254.169.254/32"),
		categories(reasonLinkLocal, "169.254.0.0/16"),
		categories(reasonUnspecified, "0.0.0.0/8"),
		categories(reasonShared, "100.64.0.0/10"),
		categories(reasonMulticast, "224.0.0.0/4"),
		categories(reasonBroadcast, "255.255.255.255/32"),
		categories(reasonReserved, "240.0.0.0/4", "192.88.99.0/24"),
		categories(reasonBenchmarking, "198.18.0.0/15"),
		categories(reasonDocumentation, "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
		categories(reasonSpecial, "192.0.0.0/24"),
	)
	builtinV6 = concat(
		categories(reasonLoopback, "::1/128"),
		categories(reasonUnspecified, "::/128"),
		categories(reasonMetadata, "fd00:ec2::254/128"),
		categories(reasonUniqueLocal, "fc00::/7"),
		categories(reasonLinkLocal, "fe80::/10"),
		categories(reasonSiteLocal, "fec0::/10"),
		categories(reasonMulticast, "ff00::/8"),
		categories(reasonNAT64Local, "64:ff9b:1::/48"),
		categories(reasonReserved, "100::/64"),
		categories(reasonBenchmarking, "2001:2::/48"),
		categories(reasonDocumentation, "2001:db8::/32", "3fff::/20"),
	)
)

// builtinReason returns the refusal reason of the built-in range a
// (canonical) lies in, or "" when it lies in none.
func builtinReason(a netip.Addr) string {
	if a.Is4() {
		for _, c := range builtinV4 {
			if c.prefix.Contains(a) {
				return c.reason
			}
		}
		return ""
	}
	for _, c := range builtinV6 {
		if c.prefix.Contains(a) {
			return c.reason
		}
	}
	if !pfxGlobalV6.Contains(a) && !pfxNAT64.Contains(a) {
		return reasonReserved
	}
	return ""
}
