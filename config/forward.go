package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirproxy/weir/proxyauth"
	"go.yaml.in/yaml/v3"
)

// ForwardProxy is a forward proxy Weir runs next to its listeners: one
// port that speaks HTTP proxying (absolute-form requests and CONNECT)
// and SOCKS5. docs/forward-proxy.md describes what it does.
type ForwardProxy struct {
	// Name identifies the forward proxy in logs (key name; default
	// "forward-N", N counting from 1 in file order). Names are unique.
	Name string

	// Address is "host:port" (key address, required), written as a
	// listener's. No listener or other forward proxy may share it.
	Address string

	// UsersFile is the users file clients authenticate against (key
	// users_file; default none: no authentication), resolved against the
	// configuration file's directory. Weir reads it again when it
	// changes.
	UsersFile string

	// AllowOpen lets a forward proxy without UsersFile listen on an
	// address other than loopback (key allow_open; default false).
	AllowOpen bool

	// TLS also makes the port an HTTPS proxy (key tls): clients may reach
	// it over TLS, with HTTP/2 CONNECT when they negotiate "h2", while
	// cleartext HTTP and SOCKS5 keep working on the same port. Nil
	// without TLS. Only the certificate keys of a listener's tls apply:
	// ClientAuth is "none", ACME nil and Fingerprint false.
	TLS *ListenerTLS

	// HTTP3 also serves MASQUE (CONNECT-UDP over HTTP/3) on the UDP port
	// with the same number (key http3). It needs TLS and excludes
	// UpstreamProxy.
	HTTP3 HTTP3

	// UserLimits bound what each user may use at once (key user_limits).
	UserLimits ForwardUserLimits

	// Policy says which destinations clients may reach (key policy).
	Policy ForwardPolicy

	// Sources picks the local address of outbound connections (key
	// sources); nil lets the kernel choose.
	Sources *ForwardSources

	// UDP lets SOCKS5 clients relay UDP (UDP ASSOCIATE) (key udp;
	// default false). Not with UpstreamProxy.
	UDP bool

	// SOCKS5Bind lets SOCKS5 clients use BIND, for protocols where the
	// server connects back, like active-mode FTP (key socks5_bind;
	// default false: BIND is answered with reply 0x07, command not
	// supported). Not with UpstreamProxy.
	SOCKS5Bind bool

	// UpstreamProxy sends every outbound connection through another
	// proxy: "http://[user:pass@]host:port" or
	// "socks5://[user:pass@]host:port" (key upstream_proxy; default
	// none: connect directly).
	UpstreamProxy string

	// Timeouts bound the phases of a client's connection (key timeouts).
	Timeouts ForwardTimeouts

	// Keepalive bounds the connections kept open to destinations of
	// plain http:// requests (key keepalive).
	Keepalive ForwardKeepalive

	// DNS says how destination names are resolved (key dns).
	DNS ForwardDNS

	// AccessLog is where one line per request, tunnel and association
	// goes: "stdout", "stderr", "off" or a file path (key access_log;
	// default Log.Access).
	AccessLog string
}

// ForwardPolicy is a forward proxy's egress policy: which destinations
// its clients may reach.
type ForwardPolicy struct {
	// AllowPrivate lets clients reach loopback, private, link-local and
	// the other special-purpose addresses refused by default (key
	// allow_private; default false). DenyCIDRs still apply.
	AllowPrivate bool

	// AllowCIDRs are address ranges let through although they are
	// refused by default, like 10.1.0.0/16 (key allow_cidrs). Stored
	// masked.
	AllowCIDRs []netip.Prefix

	// DenyCIDRs are address ranges refused always, whatever else says
	// (key deny_cidrs). Stored masked.
	DenyCIDRs []netip.Prefix

	// AllowDomains, when set, are the only names clients may reach:
	// exact names or "*.example.com" (key allow_domains). IP-literal
	// destinations must then lie in AllowCIDRs. Stored in lower case.
	AllowDomains []string

	// DenyDomains are names refused always, in the same syntax (key
	// deny_domains).
	DenyDomains []string

	// ConnectPorts are the ports tunnels (CONNECT, SOCKS5 CONNECT) may
	// reach (key connect_ports; default [DefaultForwardConnectPort]).
	ConnectPorts []uint16

	// HTTPPorts are the ports plain http:// requests may reach (key
	// http_ports; default empty: any).
	HTTPPorts []uint16

	// UDPPorts are the ports relayed UDP may reach (key udp_ports;
	// default empty: any).
	UDPPorts []uint16

	// AllowAllPorts lets every destination port through, whatever the
	// lists say (key allow_all_ports; default false).
	AllowAllPorts bool
}

// ForwardUserLimits bound each user's use of a forward proxy: an
// authenticated user, or a client IP address without users. Zero means
// no limit.
type ForwardUserLimits struct {
	// MaxConns bounds a user's tunnels, requests in flight and UDP
	// associations at once (key max_conns; default 0).
	MaxConns int

	// BytesPerSecond bounds a user's throughput in each direction, in
	// bytes per second (key bytes_per_second, a size; default 0).
	BytesPerSecond int64
}

// ForwardSources are the local addresses a forward proxy's outbound
// connections come from.
type ForwardSources struct {
	// Addresses are the local IP addresses used (key addresses,
	// required, at least one).
	Addresses []netip.Addr

	// Mode picks an address for each connection: "round_robin",
	// "by_user" or "sticky" (key mode; default "round_robin").
	Mode string

	// StickyTTL is how long an unused sticky session keeps its address
	// (key sticky_ttl; default DefaultStickyTTL). Only for "sticky".
	StickyTTL time.Duration

	// MaxSessions bounds the sticky sessions remembered (key
	// max_sessions; default DefaultMaxStickySessions). Only for "sticky".
	MaxSessions int
}

// ForwardTimeouts bound a forward proxy's client connections.
type ForwardTimeouts struct {
	// Handshake bounds the wait for a new connection's first byte, and
	// then the whole SOCKS5 handshake (key handshake; default
	// DefaultForwardHandshakeTimeout).
	Handshake time.Duration

	// Connect bounds one outbound connect, name resolution included (key
	// connect; default DefaultForwardConnectTimeout).
	Connect time.Duration

	// TunnelIdle ends a tunnel through which nothing moved for this long;
	// 0 means no limit (key tunnel_idle; default
	// DefaultForwardTunnelIdleTimeout).
	TunnelIdle time.Duration

	// UDPIdle ends a UDP association that relayed nothing for this long
	// (key udp_idle; default DefaultForwardUDPIdleTimeout).
	UDPIdle time.Duration
}

// ForwardKeepalive bounds the connections a forward proxy keeps open to
// the destinations of plain http:// requests.
type ForwardKeepalive struct {
	// MaxDestinations bounds the destinations (per source address) that
	// keep a pool of connections (key max_destinations; default
	// DefaultForwardMaxDestinations).
	MaxDestinations int

	// MaxIdle is how many idle connections are kept to one destination;
	// 0 disables reuse (key max_idle; default DefaultForwardMaxIdle).
	MaxIdle int

	// IdleTimeout closes the pool of a destination no request used for
	// this long (key idle_timeout; default
	// DefaultForwardDestinationIdle).
	IdleTimeout time.Duration
}

// ForwardDNS says how a forward proxy resolves destination names. With
// neither field set, the nameservers of /etc/resolv.conf are asked.
type ForwardDNS struct {
	// Servers are the nameservers asked, in order, as "ip:port" (key
	// servers; a port left out is 53).
	Servers []string

	// DoH is the https:// URL of a DNS-over-HTTPS server asked instead
	// of nameservers (key doh).
	DoH string
}

// Defaults of the forward proxy settings. They are those of package
// forward (and of packages egress and socks5, which it uses).
const (
	DefaultForwardConnectPort       = 443
	DefaultForwardHandshakeTimeout  = 10 * time.Second
	DefaultForwardConnectTimeout    = 5 * time.Second
	DefaultForwardTunnelIdleTimeout = 10 * time.Minute
	DefaultForwardUDPIdleTimeout    = 2 * time.Minute
	DefaultForwardMaxDestinations   = 1024
	DefaultForwardMaxIdle           = 128
	DefaultForwardDestinationIdle   = 90 * time.Second
	DefaultStickyTTL                = 10 * time.Minute
	DefaultMaxStickySessions        = 100000
)

// sourceModes are the values of sources.mode, the default first.
var sourceModes = []string{"round_robin", "by_user", "sticky"}

// upstreamProxySchemes are the schemes of upstream_proxy.
var upstreamProxySchemes = []string{"http", "socks5", "socks5h"}

// bound is an address a listener or forward proxy listens on, for
// finding two that would collide.
type bound struct {
	host, port string // canonical, from splitListenAddress
	kind, name string // "listener" or "forward proxy", and its name
	at         *yaml.Node
}

// collision reports how address addr, of a kind, collides with the
// bounds already taken, or "" when it does not.
func collision(kind, addr, host, port string, taken []bound) string {
	for _, b := range taken {
		if b.port != port {
			continue
		}
		if b.host == host {
			return fmt.Sprintf("%s address %q is already used by %s %q (line %d)", kind, clip(addr), b.kind, clip(b.name), b.at.Line)
		}
		if b.host == "" || host == "" {
			return fmt.Sprintf("%s address %q overlaps %s %q (line %d): an empty host listens on every interface", kind, clip(addr), b.kind, clip(b.name), b.at.Line)
		}
	}
	return ""
}

// isLoopbackHost reports whether a canonical host from
// splitListenAddress binds only the loopback interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// forwardRefs holds the nodes of one forward proxy that the checks made
// once all of its keys are read point at.
type forwardRefs struct {
	addr, allowOpen, udp, bind, upstream *yaml.Node
	protos                               listenerProtocols // tls and http3
}

// forwardProxies decodes the forward_proxies list. It also returns the
// node of each one's address (nil when it has none), for
// checkForwardAddresses.
func (d *decoder) forwardProxies(e entry) ([]ForwardProxy, []*yaml.Node) {
	items, _ := d.list(e.v, "forward_proxies")
	var out []ForwardProxy
	var addrs []*yaml.Node
	names := make(named)
	for i, item := range items {
		if item.Kind == yaml.ScalarNode && !isNull(item) {
			d.errorf(item, "expected a mapping for forward proxy, got %s; write - address: %q", describe(item), clip(item.Value))
			continue
		}
		fp := ForwardProxy{
			Name:   fmt.Sprintf("forward-%d", i+1),
			Policy: ForwardPolicy{ConnectPorts: []uint16{DefaultForwardConnectPort}},
			Timeouts: ForwardTimeouts{
				Handshake:  DefaultForwardHandshakeTimeout,
				Connect:    DefaultForwardConnectTimeout,
				TunnelIdle: DefaultForwardTunnelIdleTimeout,
				UDPIdle:    DefaultForwardUDPIdleTimeout,
			},
			Keepalive: ForwardKeepalive{
				MaxDestinations: DefaultForwardMaxDestinations,
				MaxIdle:         DefaultForwardMaxIdle,
				IdleTimeout:     DefaultForwardDestinationIdle,
			},
		}
		nameAt := item
		var refs forwardRefs
		var policy map[string]entry
		f := d.mapping(item, "forward proxy", "in forward proxy", fields{
			"name": func(e entry) {
				if s, ok := d.name(e.v, "forward proxy name"); ok {
					fp.Name, nameAt = s, e.v
				}
			},
			"address": func(e entry) {
				if s, ok := d.str(e.v, "address"); ok {
					fp.Address, refs.addr = s, e.v
				}
			},
			"users_file": func(e entry) {
				fp.UsersFile = d.usersFile(e.v)
			},
			"allow_open": func(e entry) {
				if d.boolean(e.v, "allow_open", &fp.AllowOpen) && fp.AllowOpen {
					refs.allowOpen = e.v
				}
			},
			"tls": func(e entry) {
				fp.TLS = d.listenerTLS(e, &refs.protos, true)
			},
			"http3":       func(e entry) { d.http3(e, &fp.HTTP3, &refs.protos) },
			"user_limits": func(e entry) { d.userLimits(e, &fp.UserLimits) },
			"policy":      func(e entry) { policy = d.forwardPolicy(e, &fp.Policy) },
			"sources":     func(e entry) { fp.Sources = d.forwardSources(e) },
			"udp": func(e entry) {
				if d.boolean(e.v, "udp", &fp.UDP) && fp.UDP {
					refs.udp = e.v
				}
			},
			"socks5_bind": func(e entry) {
				if d.boolean(e.v, "socks5_bind", &fp.SOCKS5Bind) && fp.SOCKS5Bind {
					refs.bind = e.v
				}
			},
			"upstream_proxy": func(e entry) {
				if s, ok := d.upstreamProxy(e.v); ok && s != "" {
					fp.UpstreamProxy, refs.upstream = s, e.v
				}
			},
			"timeouts":  func(e entry) { d.forwardTimeouts(e, &fp.Timeouts) },
			"keepalive": func(e entry) { d.forwardKeepalive(e, &fp.Keepalive) },
			"dns":       func(e entry) { d.forwardDNS(e, &fp.DNS) },
			"access_log": func(e entry) {
				if s, ok := d.accessLog(e.v, "access_log"); ok {
					fp.AccessLog = s
				}
			},
		})
		if item.Kind != yaml.MappingNode && !isNull(item) {
			continue // already reported
		}
		names.check(d, "forward proxy", fp.Name, nameAt)
		if _, ok := f["address"]; !ok {
			d.errorf(item, "forward proxy needs an address, like address: \"127.0.0.1:3128\"")
		} else if refs.addr != nil {
			d.checkOpenProxy(&fp, refs)
		}
		if refs.udp != nil && refs.upstream != nil {
			d.errorf(refs.udp, "udp cannot be used with upstream_proxy: UDP relaying cannot go through the next proxy")
		}
		if refs.bind != nil && refs.upstream != nil {
			d.errorf(refs.bind, "socks5_bind cannot be used with upstream_proxy: the incoming connection of a BIND would bypass the next proxy")
		}
		if t := fp.TLS; t != nil && !refs.protos.alpnSet {
			t.ALPN = slices.Clone(alpnProtocols)
		}
		if at := refs.protos.h3At; at != nil {
			switch {
			case fp.TLS == nil:
				d.errorf(at, "http3 needs tls: QUIC is always encrypted; add a tls section to forward proxy %q", clip(fp.Name))
			case refs.upstream != nil:
				d.errorf(at, "http3 cannot be used with upstream_proxy: MASQUE relays UDP, which cannot go through the next proxy")
			}
		}
		if x, ok := policy["udp_ports"]; ok && !fp.UDP {
			d.errorf(x.k, "policy.udp_ports has no effect: forward proxy %q does not relay UDP; set udp: true", clip(fp.Name))
		}
		if _, ok := f["users_file"]; ok && refs.allowOpen != nil {
			d.errorf(refs.allowOpen, "allow_open has no effect with users_file: clients must authenticate; remove one of them")
		}
		out = append(out, fp)
		addrs = append(addrs, refs.addr)
	}
	return out, addrs
}

// checkOpenProxy checks a forward proxy's address, and refuses an open
// proxy: one without users on an address other hosts can reach.
func (d *decoder) checkOpenProxy(fp *ForwardProxy, refs forwardRefs) {
	host, _, msg := splitListenAddress(fp.Address)
	if msg != "" {
		d.errorf(refs.addr, "invalid address %q for forward proxy: %s", clip(fp.Address), msg)
		return
	}
	if fp.UsersFile == "" && !fp.AllowOpen && !isLoopbackHost(host) {
		d.errorf(refs.addr, "forward proxy %q on %q would be an open proxy, usable by anyone who can reach it: add users_file, or set allow_open: true if something else (a firewall) decides who may connect",
			clip(fp.Name), clip(fp.Address))
	}
}

// checkForwardAddresses reports forward proxies whose address collides
// with a listener's or another forward proxy's. listeners holds the
// bounds of the listeners, in file order.
func (d *decoder) checkForwardAddresses(fps []ForwardProxy, listeners []bound, at []*yaml.Node) {
	taken := slices.Clone(listeners)
	for i, fp := range fps {
		if at[i] == nil {
			continue
		}
		host, port, msg := splitListenAddress(fp.Address)
		if msg != "" {
			continue // reported with the forward proxy
		}
		if c := collision("forward proxy", fp.Address, host, port, taken); c != "" {
			d.errorf(at[i], "%s", c)
		}
		taken = append(taken, bound{host: host, port: port, kind: "forward proxy", name: fp.Name, at: at[i]})
	}
}

// usersFile resolves and loads a users file, so that a missing or broken
// one is reported at n. It returns the resolved path, also when the file
// cannot be used, so that the proxy does not also count as open.
func (d *decoder) usersFile(n *yaml.Node) string {
	path, ok := d.filePath(n, "users_file")
	if !ok {
		return ""
	}
	where := ""
	if filepath.Clean(n.Value) != path {
		where = fmt.Sprintf(" (%s)", clip(path))
	}
	_, err := proxyauth.Load(path)
	var pe *proxyauth.ParseError
	var pathErr *fs.PathError
	switch {
	case err == nil:
	case errors.As(err, &pe) && pe.Line > 0:
		d.errorf(n, "users_file %q%s, line %d: %s", clip(n.Value), where, pe.Line, pe.Reason)
	case errors.As(err, &pe):
		d.errorf(n, "users_file %q%s: %s", clip(n.Value), where, pe.Reason)
	case errors.As(err, &pathErr):
		d.errorf(n, "cannot read users_file %q%s: %v", clip(n.Value), where, pathErr.Err)
	default:
		d.errorf(n, "cannot read users_file %q%s: %v", clip(n.Value), where, err)
	}
	return path
}

// forwardPolicy decodes a forward proxy's policy section, and returns
// the keys written.
func (d *decoder) forwardPolicy(e entry, p *ForwardPolicy) map[string]entry {
	var portLists []entry
	f := d.mapping(e.v, "policy", "in policy", fields{
		"allow_private": func(e entry) { d.boolean(e.v, "policy.allow_private", &p.AllowPrivate) },
		"allow_cidrs":   func(e entry) { p.AllowCIDRs = d.cidrs(e.v, "policy.allow_cidrs") },
		"deny_cidrs":    func(e entry) { p.DenyCIDRs = d.cidrs(e.v, "policy.deny_cidrs") },
		"allow_domains": func(e entry) { p.AllowDomains = d.domains(e.v, "policy.allow_domains") },
		"deny_domains":  func(e entry) { p.DenyDomains = d.domains(e.v, "policy.deny_domains") },
		"connect_ports": func(e entry) {
			portLists = append(portLists, e)
			if emptyList(e.v) {
				d.errorf(e.k, "policy.connect_ports is empty: list the ports tunnels may reach, like [443], or set allow_all_ports: true")
				return
			}
			if ports, ok := d.ports(e.v, "policy.connect_ports"); ok {
				p.ConnectPorts = ports
			}
		},
		"http_ports": func(e entry) {
			portLists = append(portLists, e)
			p.HTTPPorts, _ = d.ports(e.v, "policy.http_ports")
		},
		"udp_ports": func(e entry) {
			portLists = append(portLists, e)
			p.UDPPorts, _ = d.ports(e.v, "policy.udp_ports")
		},
		"allow_all_ports": func(e entry) { d.boolean(e.v, "policy.allow_all_ports", &p.AllowAllPorts) },
	})
	if p.AllowAllPorts {
		for _, x := range portLists {
			d.errorf(x.k, "policy.%s has no effect with allow_all_ports: true, which lets every port through; remove one of them", x.key)
		}
	}
	return f
}

// cidrs decodes one address range or a list of them.
func (d *decoder) cidrs(n *yaml.Node, name string) []netip.Prefix {
	values, nodes := d.strList(n, name)
	var out []netip.Prefix
	for i, s := range values {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			hint := "an address range like 10.1.0.0/16 or 2001:db8::/32"
			if ip, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
				hint = fmt.Sprintf("an address range; for this one address, %s/%d", ip.WithZone(""), ip.BitLen())
			}
			d.errorf(nodes[i], "invalid CIDR %q in %s: write %s", clip(s), name, hint)
			continue
		}
		if p = p.Masked(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// domains decodes one domain pattern or a list of them: exact names or
// wildcards one label deep and more ("*.example.com").
func (d *decoder) domains(n *yaml.Node, name string) []string {
	values, nodes := d.strList(n, name)
	var out []string
	for i, s := range values {
		norm, msg := checkDomainPattern(s)
		if msg != "" {
			d.errorf(nodes[i], "invalid domain %q in %s: %s", clip(s), name, msg)
			continue
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	return out
}

// checkDomainPattern checks a domain of a forward proxy's policy and
// returns it in lower case, without a final dot.
func checkDomainPattern(s string) (string, string) {
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	rest, wild := strings.CutPrefix(h, "*.")
	switch {
	case h == "*":
		return "", `"*" would match every name; leave the list out instead`
	case strings.Contains(rest, "*"):
		return "", "a wildcard may only be the whole first label, like *.example.com"
	case strings.Contains(rest, ":") && !wild:
		if _, err := netip.ParseAddr(rest); err == nil {
			return "", "IP addresses are matched by allow_cidrs and deny_cidrs, not by domains"
		}
		return "", "domains have no port: connect_ports and http_ports decide ports"
	case strings.Contains(rest, ":"):
		return "", "domains have no port: connect_ports and http_ports decide ports"
	}
	if _, err := netip.ParseAddr(rest); err == nil {
		return "", "IP addresses are matched by allow_cidrs and deny_cidrs, not by domains"
	}
	if msg := checkHostname(rest); msg != "" {
		return "", msg
	}
	if wild {
		return "*." + rest, ""
	}
	return rest, ""
}

// ports decodes one port or a list of ports, each from 1 to 65535.
func (d *decoder) ports(n *yaml.Node, name string) ([]uint16, bool) {
	items := []*yaml.Node{n}
	if n.Kind != yaml.ScalarNode {
		var ok bool
		if items, ok = d.list(n, name); !ok {
			return nil, false
		}
	}
	var out []uint16
	ok := true
	for _, item := range items {
		v, good := d.integer(item, name, 1, 65535)
		if !good {
			ok = false
			continue
		}
		if !slices.Contains(out, uint16(v)) {
			out = append(out, uint16(v))
		}
	}
	return out, ok
}

// forwardSources decodes a forward proxy's sources section.
func (d *decoder) forwardSources(e entry) *ForwardSources {
	s := &ForwardSources{Mode: sourceModes[0], StickyTTL: DefaultStickyTTL, MaxSessions: DefaultMaxStickySessions}
	first := make(map[netip.Addr]*yaml.Node)
	f := d.mapping(e.v, "sources", "in sources", fields{
		"addresses": func(e entry) {
			values, nodes := d.strList(e.v, "sources.addresses")
			for i, v := range values {
				ip, err := netip.ParseAddr(strings.TrimSpace(v))
				switch {
				case err != nil:
					d.errorf(nodes[i], "invalid source address %q in sources.addresses: write an IP address of this host, like 192.0.2.10", clip(v))
					continue
				case ip.Unmap().IsUnspecified():
					d.errorf(nodes[i], "invalid source address %q in sources.addresses: the unspecified address lets the kernel choose; leave sources out for that", clip(v))
					continue
				}
				ip = ip.Unmap()
				if at := first[ip]; at != nil {
					d.errorf(nodes[i], "source address %q appears twice in sources.addresses (first at line %d)", clip(v), at.Line)
					continue
				}
				first[ip] = nodes[i]
				s.Addresses = append(s.Addresses, ip)
			}
		},
		"mode":       func(e entry) { d.enum(e.v, "sources.mode", sourceModes, &s.Mode) },
		"sticky_ttl": func(e entry) { d.duration(e.v, "sources.sticky_ttl", false, &s.StickyTTL) },
		"max_sessions": func(e entry) {
			d.intField(e.v, "sources.max_sessions", 1, math.MaxInt, &s.MaxSessions)
		},
	})
	if e.v.Kind != yaml.MappingNode && !isNull(e.v) {
		return s
	}
	if x, ok := f["addresses"]; !ok || emptyList(x.v) {
		d.errorf(e.k, "sources needs addresses: the local IP addresses outbound connections come from, like addresses: [192.0.2.10, 192.0.2.11]")
	}
	if s.Mode != "sticky" {
		for _, key := range []string{"sticky_ttl", "max_sessions"} {
			if x, ok := f[key]; ok {
				d.errorf(x.k, "sources.%s is only used by mode sticky, and this one is %s", key, s.Mode)
			}
		}
	}
	return s
}

// upstreamProxy checks the URL of the next proxy: "http://host:port" or
// "socks5://host:port", with optional user information. The empty
// string means none.
func (d *decoder) upstreamProxy(n *yaml.Node) (string, bool) {
	s, ok := d.str(n, "upstream_proxy")
	if !ok || s == "" {
		return "", ok
	}
	fail := func(shown, msg string) (string, bool) {
		d.errorf(n, "invalid upstream_proxy %q: %s", clip(shown), msg)
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || !strings.Contains(s, "://") {
		return fail(redactURL(s), "write http://[USER:PASS@]HOST:PORT or socks5://[USER:PASS@]HOST:PORT")
	}
	shown := u.Redacted()
	if !slices.Contains(upstreamProxySchemes, u.Scheme) {
		hint := didYouMean(u.Scheme, upstreamProxySchemes)
		if hint == "" {
			hint = ": use http:// (an HTTP proxy, reached in cleartext) or socks5://"
		}
		return fail(shown, fmt.Sprintf("unknown scheme %q%s", clip(u.Scheme), hint))
	}
	switch {
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fail(shown, "the next proxy is SCHEME://[USER:PASS@]HOST:PORT, without a path, query or fragment")
	case u.Hostname() == "":
		return fail(shown, "missing host")
	case u.Port() == "":
		return fail(shown, "missing port, like :3128 or :1080")
	case u.User != nil && u.User.Username() == "":
		return fail(shown, "empty user name")
	}
	if msg := checkHost(u.Hostname()); msg != "" {
		return fail(shown, msg)
	}
	if _, msg := checkPort(u.Port()); msg != "" {
		return fail(shown, msg)
	}
	return s, true
}

// redactURL hides what looks like a password in a URL that does not
// parse, for error messages.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			return scheme + "://" + user + ":xxxxx" + rest[at:]
		}
	}
	return s
}

// userLimits decodes a forward proxy's user_limits section.
func (d *decoder) userLimits(e entry, u *ForwardUserLimits) {
	d.mapping(e.v, "user_limits", "in user_limits", fields{
		"max_conns": func(e entry) {
			d.intField(e.v, "user_limits.max_conns", 0, math.MaxInt32, &u.MaxConns)
		},
		"bytes_per_second": func(e entry) {
			if v, ok := d.size(e.v, "user_limits.bytes_per_second", 0); ok {
				u.BytesPerSecond = v
			}
		},
	})
}

// forwardTimeouts decodes a forward proxy's timeouts section.
func (d *decoder) forwardTimeouts(e entry, t *ForwardTimeouts) {
	d.mapping(e.v, "timeouts", "in forward proxy timeouts", fields{
		"handshake":   func(e entry) { d.duration(e.v, "timeouts.handshake", false, &t.Handshake) },
		"connect":     func(e entry) { d.duration(e.v, "timeouts.connect", false, &t.Connect) },
		"tunnel_idle": func(e entry) { d.duration(e.v, "timeouts.tunnel_idle", true, &t.TunnelIdle) },
		"udp_idle":    func(e entry) { d.duration(e.v, "timeouts.udp_idle", false, &t.UDPIdle) },
	})
}

// forwardKeepalive decodes a forward proxy's keepalive section.
func (d *decoder) forwardKeepalive(e entry, k *ForwardKeepalive) {
	d.mapping(e.v, "keepalive", "in forward proxy keepalive", fields{
		"max_destinations": func(e entry) {
			d.intField(e.v, "keepalive.max_destinations", 1, math.MaxInt32, &k.MaxDestinations)
		},
		"max_idle": func(e entry) {
			d.intField(e.v, "keepalive.max_idle", 0, math.MaxInt32, &k.MaxIdle)
		},
		"idle_timeout": func(e entry) {
			d.duration(e.v, "keepalive.idle_timeout", false, &k.IdleTimeout)
		},
	})
}

// forwardDNS decodes a forward proxy's dns section.
func (d *decoder) forwardDNS(e entry, c *ForwardDNS) {
	var serversAt, dohAt *yaml.Node
	d.mapping(e.v, "dns", "in dns", fields{
		"servers": func(e entry) {
			serversAt = e.k
			values, nodes := d.strList(e.v, "dns.servers")
			for i, v := range values {
				addr, msg := checkNameserver(v)
				switch {
				case msg != "":
					d.errorf(nodes[i], "invalid nameserver %q in dns.servers: %s", clip(v), msg)
				case slices.Contains(c.Servers, addr):
					d.errorf(nodes[i], "nameserver %q appears twice in dns.servers", clip(v))
				default:
					c.Servers = append(c.Servers, addr)
				}
			}
		},
		"doh": func(e entry) {
			s, ok := d.str(e.v, "dns.doh")
			if !ok {
				return
			}
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "https" || u.Host == "" || checkHost(u.Hostname()) != "" {
				d.errorf(e.v, "invalid dns.doh %q: give the https:// URL of a DNS-over-HTTPS server, like https://1.1.1.1/dns-query", clip(s))
				return
			}
			c.DoH, dohAt = s, e.k
		},
	})
	if serversAt != nil && dohAt != nil {
		d.errorf(dohAt, "dns.doh and dns.servers exclude each other: ask nameservers, or a DNS-over-HTTPS server")
	}
}

// checkNameserver checks a nameserver address, "ip" or "ip:port"
// ("[ipv6]:port"), and returns it as "ip:port".
func checkNameserver(s string) (string, string) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(ip.String(), "53"), ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", "write an IP address with an optional port, like 192.0.2.53 or [2001:db8::53]:53"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", "nameservers are IP addresses, not names"
	}
	n, msg := checkPort(port)
	if msg != "" {
		return "", msg
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(n)), ""
}

// accessLog checks an access log destination: stdout, stderr, off or a
// file path.
func (d *decoder) accessLog(n *yaml.Node, name string) (string, bool) {
	s, ok := d.str(n, name)
	if !ok {
		return "", false
	}
	if s == "" || strings.ContainsRune(s, 0) {
		d.errorf(n, "invalid %s %q: use stdout, stderr, off or a file path", name, clip(s))
		return "", false
	}
	return s, true
}
