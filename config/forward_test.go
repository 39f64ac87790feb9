package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/socks5"
)

// usersLine is one valid line of a users file (alice, bcrypt).
const usersLine = "alice:$2a$10$rLCgQS20TWC14flLFTdsXOm4t738VK8AXORpK5hCOqPk05P.QUCCK\n"

// usersDir returns a temporary directory holding users.txt (valid),
// bad-users.txt (a plain-text password on line 2) and sub/ (a
// directory).
func usersDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.txt"), []byte(usersLine))
	writeFile(t, filepath.Join(dir, "bad-users.txt"), []byte("# users\nbob:secret\n"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestForwardDefaultsMatchPackages checks the defaults that come from
// packages egress and socks5; those of package forward itself are
// checked by the weir package, which maps the configuration onto it.
func TestForwardDefaultsMatchPackages(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"DefaultForwardConnectPort", uint16(DefaultForwardConnectPort), egress.DefaultConnectPort},
		{"DefaultForwardHandshakeTimeout", DefaultForwardHandshakeTimeout, socks5.DefaultHandshakeTimeout},
		{"DefaultForwardConnectTimeout", DefaultForwardConnectTimeout, egress.DefaultConnectTimeout},
		{"DefaultForwardUDPIdleTimeout", DefaultForwardUDPIdleTimeout, socks5.DefaultUDPIdleTimeout},
		{"DefaultStickyTTL", DefaultStickyTTL, egress.DefaultStickyTTL},
		{"DefaultMaxStickySessions", DefaultMaxStickySessions, egress.DefaultMaxSessions},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, the package's default is %v", c.name, c.got, c.want)
		}
	}
	if !reflect.DeepEqual(sourceModes, []string{egress.ModeRoundRobin, egress.ModeByUser, egress.ModeSticky}) {
		t.Errorf("sources.mode choices %q differ from egress's", sourceModes)
	}
}

func TestForwardProxyDefaults(t *testing.T) {
	cfg := mustParse(t, "forward_proxies:\n  - address: \"127.0.0.1:3128\"\nlog: {access: stderr}\n")
	if len(cfg.Listeners) != 0 {
		t.Errorf("Listeners = %+v, want none", cfg.Listeners)
	}
	want := []ForwardProxy{{
		Name:    "forward-1",
		Address: "127.0.0.1:3128",
		Policy:  ForwardPolicy{ConnectPorts: []uint16{443}},
		Timeouts: ForwardTimeouts{
			Handshake:  10 * time.Second,
			Connect:    5 * time.Second,
			TunnelIdle: 10 * time.Minute,
			UDPIdle:    2 * time.Minute,
		},
		Keepalive: ForwardKeepalive{MaxDestinations: 1024, MaxIdle: 128, IdleTimeout: 90 * time.Second},
		AccessLog: "stderr", // log.access
	}}
	if !reflect.DeepEqual(cfg.ForwardProxies, want) {
		t.Errorf("ForwardProxies:\ngot  %+v\nwant %+v", cfg.ForwardProxies, want)
	}
}

func TestForwardProxyEverySetting(t *testing.T) {
	dir := usersDir(t)
	cfg, err := parseIn(t, dir, `
listeners:
  - address: "127.0.0.1:8080"
forward_proxies:
  - name: egress
    address: ":3128"
    users_file: users.txt
    policy:
      allow_private: true
      allow_cidrs: [10.1.2.3/16, "fd00::/8"]
      deny_cidrs: 10.1.99.0/24
      allow_domains: ["*.Example.com.", api.example.org, "*.example.com"]
      deny_domains: [bad.example.com]
      connect_ports: [443, 8443, 443]
      http_ports: 80
      udp_ports: [53, 443]
    sources:
      addresses: [127.0.0.2, "::ffff:127.0.0.3"]
      mode: sticky
      sticky_ttl: 30m
      max_sessions: 500
    udp: true
    socks5_bind: true
    timeouts: {handshake: 3s, connect: 2s, tunnel_idle: 0s, udp_idle: 1m}
    keepalive: {max_destinations: 10, max_idle: 0, idle_timeout: 30s}
    dns: {servers: [192.0.2.53, "[2001:db8::53]:5353"]}
    access_log: /var/log/weir/forward.log
  - address: "127.0.0.1:3129"
    upstream_proxy: socks5://me:pw@proxy.example:1080
    allow_open: true
    dns: {doh: https://1.1.1.1/dns-query}
    policy: {allow_all_ports: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []ForwardProxy{{
		Name:      "egress",
		Address:   ":3128",
		UsersFile: filepath.Join(dir, "users.txt"),
		Policy: ForwardPolicy{
			AllowPrivate: true,
			AllowCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8")},
			DenyCIDRs:    []netip.Prefix{netip.MustParsePrefix("10.1.99.0/24")},
			AllowDomains: []string{"*.example.com", "api.example.org"},
			DenyDomains:  []string{"bad.example.com"},
			ConnectPorts: []uint16{443, 8443},
			HTTPPorts:    []uint16{80},
			UDPPorts:     []uint16{53, 443},
		},
		Sources: &ForwardSources{
			Addresses:   []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")},
			Mode:        "sticky",
			StickyTTL:   30 * time.Minute,
			MaxSessions: 500,
		},
		UDP:        true,
		SOCKS5Bind: true,
		Timeouts:   ForwardTimeouts{Handshake: 3 * time.Second, Connect: 2 * time.Second, TunnelIdle: 0, UDPIdle: time.Minute},
		Keepalive:  ForwardKeepalive{MaxDestinations: 10, MaxIdle: 0, IdleTimeout: 30 * time.Second},
		DNS:        ForwardDNS{Servers: []string{"192.0.2.53:53", "[2001:db8::53]:5353"}},
		AccessLog:  "/var/log/weir/forward.log",
	}, {
		Name:          "forward-2",
		Address:       "127.0.0.1:3129",
		AllowOpen:     true,
		UpstreamProxy: "socks5://me:pw@proxy.example:1080",
		Policy:        ForwardPolicy{ConnectPorts: []uint16{443}, AllowAllPorts: true},
		Timeouts: ForwardTimeouts{Handshake: DefaultForwardHandshakeTimeout, Connect: DefaultForwardConnectTimeout,
			TunnelIdle: DefaultForwardTunnelIdleTimeout, UDPIdle: DefaultForwardUDPIdleTimeout},
		Keepalive: ForwardKeepalive{MaxDestinations: DefaultForwardMaxDestinations, MaxIdle: DefaultForwardMaxIdle,
			IdleTimeout: DefaultForwardDestinationIdle},
		DNS:       ForwardDNS{DoH: "https://1.1.1.1/dns-query"},
		AccessLog: "stdout",
	}}
	for i := range max(len(want), len(cfg.ForwardProxies)) {
		if i >= len(want) || i >= len(cfg.ForwardProxies) || !reflect.DeepEqual(cfg.ForwardProxies[i], want[i]) {
			var got, w any
			if i < len(cfg.ForwardProxies) {
				got = cfg.ForwardProxies[i]
			}
			if i < len(want) {
				w = want[i]
			}
			t.Errorf("forward proxy %d:\ngot  %+v\nwant %+v", i, got, w)
		}
	}
}

// forwardErrorCases are parsed as f.yaml in a directory made by usersDir.
var forwardErrorCases = []struct {
	name string
	src  string
	want []string
}{
	{"address/missing", "forward_proxies:\n  - users_file: users.txt\n",
		[]string{`f.yaml:2:5: forward proxy needs an address, like address: "127.0.0.1:3128"`}},
	{"address/invalid", "forward_proxies:\n  - address: \"127.0.0.1\"\n",
		[]string{`f.yaml:2:14: invalid address "127.0.0.1" for forward proxy: missing port`}},
	{"address/scalar item", "forward_proxies:\n  - \"127.0.0.1:3128\"\n",
		[]string{`f.yaml:2:5: expected a mapping for forward proxy, got a string ("127.0.0.1:3128"); write - address: "127.0.0.1:3128"`}},
	{"address/used by listener", "listeners:\n  - {name: web, address: \"127.0.0.1:3128\"}\nforward_proxies:\n  - address: \"127.0.0.1:3128\"\n",
		[]string{`f.yaml:4:14: forward proxy address "127.0.0.1:3128" is already used by listener "web" (line 2)`}},
	{"address/listener written after", "forward_proxies:\n  - address: \"localhost:3128\"\nlisteners:\n  - address: \":3128\"\n",
		[]string{`f.yaml:2:14: forward proxy address "localhost:3128" overlaps listener "listener-1" (line 4): an empty host listens on every interface`}},
	{"address/two forward proxies", "forward_proxies:\n  - {name: a, address: \"127.0.0.1:3128\"}\n  - {name: b, address: \"[::ffff:127.0.0.1]:3128\", users_file: users.txt}\n",
		[]string{`f.yaml:3:24: forward proxy address "[::ffff:127.0.0.1]:3128" is already used by forward proxy "a" (line 2)`}},
	{"name/duplicate", "forward_proxies:\n  - {name: a, address: \"127.0.0.1:1\"}\n  - {name: a, address: \"127.0.0.1:2\"}\n",
		[]string{`f.yaml:3:12: forward proxy name "a" is used twice (first at line 2)`}},
	{"unknown key", "forward_proxies:\n  - {address: \"127.0.0.1:1\", user_file: users.txt}\n",
		[]string{`f.yaml:2:30: unknown key "user_file" in forward proxy; did you mean "users_file"?`}},

	{"open/every interface", "forward_proxies:\n  - name: egress\n    address: \":3128\"\n", []string{
		`f.yaml:3:14: forward proxy "egress" on ":3128" would be an open proxy, usable by anyone who can reach it: add users_file, or set allow_open: true if something else (a firewall) decides who may connect`,
	}},
	{"open/public address", "forward_proxies:\n  - address: \"192.0.2.1:3128\"\n", []string{
		`f.yaml:2:14: forward proxy "forward-1" on "192.0.2.1:3128" would be an open proxy, usable by anyone who can reach it: add users_file, or set allow_open: true if something else (a firewall) decides who may connect`,
	}},
	{"open/allow_open with users", "forward_proxies:\n  - {address: \":3128\", users_file: users.txt, allow_open: true}\n",
		[]string{`f.yaml:2:59: allow_open has no effect with users_file: clients must authenticate; remove one of them`}},

	{"users/missing file", "forward_proxies:\n  - {address: \":3128\", users_file: nope.txt}\n",
		[]string{`f.yaml:2:36: cannot read users_file "nope.txt" (DIR/nope.txt): no such file or directory`}},
	{"users/bad line", "forward_proxies:\n  - {address: \":3128\", users_file: bad-users.txt}\n",
		[]string{`f.yaml:2:36: users_file "bad-users.txt" (DIR/bad-users.txt), line 2: user "bob": unsupported hash (want bcrypt $2a$/$2b$/$2y$ or $argon2id$; plain-text passwords are not accepted)`}},
	{"users/directory", "forward_proxies:\n  - {address: \":3128\", users_file: sub}\n",
		[]string{`f.yaml:2:36: cannot read users_file "sub" (DIR/sub): is a directory`}},

	{"policy/bad cidr", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy:\n      allow_cidrs: [10.0.0.0/8, 10.300.0.0/16]\n",
		[]string{`f.yaml:4:33: invalid CIDR "10.300.0.0/16" in policy.allow_cidrs: write an address range like 10.1.0.0/16 or 2001:db8::/32`}},
	{"policy/address without length", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {deny_cidrs: 169.254.169.254}\n",
		[]string{`f.yaml:3:26: invalid CIDR "169.254.169.254" in policy.deny_cidrs: write an address range; for this one address, 169.254.169.254/32`}},
	{"policy/bad domain", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {allow_domains: [\"a..example.com\"]}\n",
		[]string{`f.yaml:3:30: invalid domain "a..example.com" in policy.allow_domains: host names may not contain empty labels ("..")`}},
	{"policy/domain wildcard inside", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {deny_domains: \"api.*.com\"}\n",
		[]string{`f.yaml:3:28: invalid domain "api.*.com" in policy.deny_domains: a wildcard may only be the whole first label, like *.example.com`}},
	{"policy/domain is an address", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {allow_domains: [10.0.0.1]}\n",
		[]string{`f.yaml:3:30: invalid domain "10.0.0.1" in policy.allow_domains: IP addresses are matched by allow_cidrs and deny_cidrs, not by domains`}},
	{"policy/domain with port", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {allow_domains: [\"example.com:443\"]}\n",
		[]string{`f.yaml:3:30: invalid domain "example.com:443" in policy.allow_domains: domains have no port: connect_ports and http_ports decide ports`}},
	{"policy/port out of range", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {connect_ports: [443, 65536]}\n",
		[]string{`f.yaml:3:35: policy.connect_ports must be from 1 to 65535, got 65536`}},
	{"policy/port zero", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {http_ports: 0}\n",
		[]string{`f.yaml:3:26: policy.http_ports must be from 1 to 65535, got 0`}},
	{"policy/empty connect_ports", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {connect_ports: []}\n",
		[]string{`f.yaml:3:14: policy.connect_ports is empty: list the ports tunnels may reach, like [443], or set allow_all_ports: true`}},
	{"policy/ports with allow_all_ports", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {connect_ports: [22], allow_all_ports: true}\n",
		[]string{`f.yaml:3:14: policy.connect_ports has no effect with allow_all_ports: true, which lets every port through; remove one of them`}},
	{"policy/udp_ports without udp", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {udp_ports: [53]}\n",
		[]string{`f.yaml:3:14: policy.udp_ports has no effect: forward proxy "forward-1" does not relay UDP; set udp: true`}},
	{"policy/unknown key", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    policy: {allow_privat: true}\n",
		[]string{`f.yaml:3:14: unknown key "allow_privat" in policy; did you mean "allow_private"?`}},

	{"sources/unknown mode", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {addresses: [127.0.0.2], mode: stiky}\n",
		[]string{`f.yaml:3:45: unknown sources.mode "stiky"; did you mean "sticky"?`}},
	{"sources/mode", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {addresses: [127.0.0.2], mode: random}\n",
		[]string{`f.yaml:3:45: unknown sources.mode "random": use "round_robin", "by_user" or "sticky"`}},
	{"sources/no addresses", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {mode: by_user}\n",
		[]string{`f.yaml:3:5: sources needs addresses: the local IP addresses outbound connections come from, like addresses: [192.0.2.10, 192.0.2.11]`}},
	{"sources/bad address", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {addresses: [127.0.0.2, eth0]}\n",
		[]string{`f.yaml:3:38: invalid source address "eth0" in sources.addresses: write an IP address of this host, like 192.0.2.10`}},
	{"sources/duplicate", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {addresses: [127.0.0.2, \"::ffff:127.0.0.2\"]}\n",
		[]string{`f.yaml:3:38: source address "::ffff:127.0.0.2" appears twice in sources.addresses (first at line 3)`}},
	{"sources/sticky_ttl without sticky", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    sources: {addresses: [127.0.0.2], sticky_ttl: 5m}\n",
		[]string{`f.yaml:3:39: sources.sticky_ttl is only used by mode sticky, and this one is round_robin`}},

	{"upstream_proxy/scheme", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    upstream_proxy: \"sock5://me:secret@p.example:1080\"\n",
		[]string{`f.yaml:3:21: invalid upstream_proxy "sock5://me:xxxxx@p.example:1080": unknown scheme "sock5"; did you mean "socks5"?`}},
	{"upstream_proxy/https", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    upstream_proxy: \"https://p.example:443\"\n",
		[]string{`f.yaml:3:21: invalid upstream_proxy "https://p.example:443": unknown scheme "https"; did you mean "http"?`}},
	{"upstream_proxy/no port", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    upstream_proxy: \"http://p.example\"\n",
		[]string{`f.yaml:3:21: invalid upstream_proxy "http://p.example": missing port, like :3128 or :1080`}},
	{"upstream_proxy/no scheme", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    upstream_proxy: \"p.example:3128\"\n",
		[]string{`f.yaml:3:21: invalid upstream_proxy "p.example:3128": write http://[USER:PASS@]HOST:PORT or socks5://[USER:PASS@]HOST:PORT`}},
	{"upstream_proxy/with udp", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    udp: true\n    upstream_proxy: \"http://p.example:3128\"\n",
		[]string{`f.yaml:3:10: udp cannot be used with upstream_proxy: UDP relaying cannot go through the next proxy`}},
	{"upstream_proxy/with socks5_bind", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    socks5_bind: true\n    upstream_proxy: \"socks5://p.example:1080\"\n",
		[]string{`f.yaml:3:18: socks5_bind cannot be used with upstream_proxy: the incoming connection of a BIND would bypass the next proxy`}},
	{"socks5_bind/not a boolean", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    socks5_bind: yes please\n",
		[]string{`f.yaml:3:18: expected true or false for socks5_bind, got a string ("yes please")`}},

	{"timeouts/zero handshake", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    timeouts: {handshake: 0s}\n",
		[]string{`f.yaml:3:27: timeouts.handshake must be greater than 0`}},
	{"timeouts/bad duration", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    timeouts: {tunnel_idle: 10}\n",
		[]string{`f.yaml:3:29: invalid duration "10" for timeouts.tunnel_idle: use Go syntax like 5s or 1m30s`}},
	{"timeouts/unknown key", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    timeouts: {idle: 1m}\n",
		[]string{`f.yaml:3:16: unknown key "idle" in forward proxy timeouts (valid keys: connect, handshake, tunnel_idle, udp_idle)`}},
	{"keepalive/zero destinations", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    keepalive: {max_destinations: 0}\n",
		[]string{`f.yaml:3:35: keepalive.max_destinations must be from 1 to 2147483647, got 0`}},

	{"dns/server name", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    dns: {servers: [dns.example:53]}\n",
		[]string{`f.yaml:3:21: invalid nameserver "dns.example:53" in dns.servers: nameservers are IP addresses, not names`}},
	{"dns/doh not https", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    dns: {doh: \"http://1.1.1.1/dns-query\"}\n",
		[]string{`f.yaml:3:16: invalid dns.doh "http://1.1.1.1/dns-query": give the https:// URL of a DNS-over-HTTPS server, like https://1.1.1.1/dns-query`}},
	{"dns/both", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    dns: {servers: 192.0.2.53, doh: \"https://1.1.1.1/dns-query\"}\n",
		[]string{`f.yaml:3:32: dns.doh and dns.servers exclude each other: ask nameservers, or a DNS-over-HTTPS server`}},

	{"access_log/empty", "forward_proxies:\n  - {address: \"127.0.0.1:1\", access_log: \"\"}\n",
		[]string{`f.yaml:2:42: invalid access_log "": use stdout, stderr, off or a file path`}},
	{"empty listeners and forward proxies", "listeners: []\nforward_proxies: []\n",
		[]string{`f.yaml:1:1: listeners is empty: at least one listener or forward proxy is required`}},
}

func TestForwardErrors(t *testing.T) {
	dir := usersDir(t)
	for _, tc := range forwardErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseIn(t, dir, tc.src)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse: %v (config %v), want errors:\n%s", err, cfg != nil, strings.Join(tc.want, "\n"))
			}
			var got, want []string
			for _, e := range list {
				got = append(got, strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
			}
			for _, w := range tc.want {
				want = append(want, strings.ReplaceAll(w, "DIR", dir))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("source:\n%s\ngot:\n%s\nwant:\n%s", tc.src, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestForwardProxyLoopbackNeedsNoUsers: without users, loopback
// addresses are fine, and so is allow_open anywhere.
func TestForwardProxyLoopbackNeedsNoUsers(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:3128", "127.1.2.3:3128", "[::1]:3128", "localhost:3128", "LocalHost.:3128"} {
		if _, err := Parse("f.yaml", []byte("forward_proxies:\n  - address: \""+addr+"\"\n")); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if _, err := Parse("f.yaml", []byte("forward_proxies:\n  - {address: \":3128\", allow_open: true}\n")); err != nil {
		t.Errorf("allow_open: %v", err)
	}
}

func TestForwardProxyTLS(t *testing.T) {
	dir := tlsDir(t)
	cfg, err := parseIn(t, dir, `
forward_proxies:
  - address: "127.0.0.1:3128"
    tls:
      certificates: [{cert: a.pem, key: a-key.pem}]
      min_version: "1.3"
    http3: {enabled: true}
    user_limits: {max_conns: 10, bytes_per_second: 1MiB}
  - address: "127.0.0.1:3129"
    tls: {certificates: [{cert: b.pem, key: b-key.pem}], alpn: http/1.1, reload_interval: 0s}
`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.ForwardProxies[0], cfg.ForwardProxies[1]
	wantA := &ListenerTLS{
		Certificates:   []Certificate{{Cert: filepath.Join(dir, "a.pem"), Key: filepath.Join(dir, "a-key.pem")}},
		ClientAuth:     "none",
		MinVersion:     "1.3",
		ALPN:           []string{"h2", "http/1.1"},
		ReloadInterval: DefaultCertReloadInterval,
	}
	if !reflect.DeepEqual(a.TLS, wantA) {
		t.Errorf("tls:\ngot  %+v\nwant %+v", a.TLS, wantA)
	}
	if !a.HTTP3.Enabled || a.UserLimits != (ForwardUserLimits{MaxConns: 10, BytesPerSecond: 1 << 20}) {
		t.Errorf("http3 %+v, user_limits %+v", a.HTTP3, a.UserLimits)
	}
	if b.TLS == nil || !reflect.DeepEqual(b.TLS.ALPN, []string{"http/1.1"}) || b.TLS.ReloadInterval != 0 || b.HTTP3.Enabled || b.UserLimits != (ForwardUserLimits{}) {
		t.Errorf("second forward proxy: tls %+v, http3 %+v, user_limits %+v", b.TLS, b.HTTP3, b.UserLimits)
	}
}

func TestForwardProxyTLSErrors(t *testing.T) {
	dir := tlsDir(t)
	for _, tc := range []struct{ name, src, want string }{
		{"http3 without tls", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    http3: {enabled: true}\n",
			`f.yaml:3:22: http3 needs tls: QUIC is always encrypted; add a tls section to forward proxy "forward-1"`},
		{"http3 with upstream_proxy", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    tls: {certificates: [{cert: a.pem, key: a-key.pem}]}\n    http3: {enabled: true}\n    upstream_proxy: \"http://p.example:3128\"\n",
			`f.yaml:4:22: http3 cannot be used with upstream_proxy: MASQUE relays UDP, which cannot go through the next proxy`},
		{"tls without certificates", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    tls: {min_version: \"1.3\"}\n",
			`f.yaml:3:5: tls needs certificates, like certificates: [{cert: cert.pem, key: key.pem}]`},
		{"tls client_auth", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    tls: {certificates: [{cert: a.pem, key: a-key.pem}], client_auth: require}\n",
			`f.yaml:3:58: unknown key "client_auth" in forward proxy tls (valid keys: alpn, certificates, default_certificate, min_version, reload_interval)`},
		{"tls acme", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    tls: {acme: {}}\n",
			`f.yaml:3:5: tls needs certificates, like certificates: [{cert: cert.pem, key: key.pem}]` + "\n" +
				`f.yaml:3:11: unknown key "acme" in forward proxy tls (valid keys: alpn, certificates, default_certificate, min_version, reload_interval)`},
		{"tls missing key file", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    tls: {certificates: [{cert: a.pem, key: nope.pem}]}\n",
			`f.yaml:3:45: cannot read tls key file "nope.pem" (DIR/nope.pem): no such file or directory`},
		{"user_limits negative", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    user_limits: {max_conns: -1}\n",
			`f.yaml:3:30: user_limits.max_conns must be from 0 to 2147483647, got -1`},
		{"user_limits bad size", "forward_proxies:\n  - address: \"127.0.0.1:1\"\n    user_limits: {bytes_per_second: 10mbit}\n",
			`f.yaml:3:37: invalid size "10mbit" for user_limits.bytes_per_second: unknown unit "mbit"; use B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseIn(t, dir, tc.src)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse: %v, want:\n%s", err, tc.want)
			}
			var got []string
			for _, e := range list {
				got = append(got, strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
			}
			if want := strings.ReplaceAll(tc.want, "DIR", dir); strings.Join(got, "\n") != want {
				t.Errorf("source:\n%s\ngot:\n%s\nwant:\n%s", tc.src, strings.Join(got, "\n"), want)
			}
		})
	}
}
