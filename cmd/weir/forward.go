package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/filters/metrics"
	"github.com/weirproxy/weir/forward"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/proxyauth"
	"github.com/weirproxy/weir/tlsconf"
)

const forwardProxyHelp = `Usage: weir forward-proxy [flags]

Runs a forward proxy: clients configured to use it reach the Internet
through Weir. One port speaks every protocol:
  - HTTP proxying: plain http:// requests ("curl -x http://HOST:3128 URL")
    and CONNECT tunnels for https:// and anything else over TCP;
  - HTTPS proxying, with --tls-cert and --tls-key: the same over TLS
    ("curl --proxy https://HOST:3128 URL"), HTTP/2 CONNECT included;
  - SOCKS5 ("curl --socks5-hostname HOST:3128 URL"), with UDP relaying
    when --udp is given and BIND (the server connects back, as in
    active-mode FTP) when --socks-bind is given;
  - with --http3, MASQUE (CONNECT-UDP over HTTP/3, RFC 9298) on the UDP
    port of the same number.

Safe by default:
  - it listens on 127.0.0.1:3128, reachable from this machine only; on any
    other address it refuses to start without users (--auth or --users)
    unless --allow-open is given;
  - destinations on loopback, private, link-local (cloud metadata
    169.254.169.254 included), multicast and other special-purpose
    addresses are refused with 403 (SOCKS5: reply 2, "not allowed"), for
    names after resolving them and for IPv4 hidden in IPv6 forms too;
    --allow-private lifts that for a proxy that fronts a private network,
    --allow-cidr lifts it for some ranges only;
  - tunnels (CONNECT, SOCKS5) may reach port 443 only; --connect-ports
    widens that. Plain http:// requests may reach any port.

Users authenticate with Basic proxy authentication over HTTP and with
username/password over SOCKS5. A user name "alice-session-abc123" logs in
as alice; the session part only keeps the same source address for a
session (--source-mode sticky).

Examples:
  # on this machine only, no authentication
  weir forward-proxy
  curl -x http://127.0.0.1:3128 http://example.com/
  curl --socks5-hostname 127.0.0.1:3128 https://example.com/

  # for a whole network: users from a file (reloaded when it changes)
  weir forward-proxy --listen :3128 --users /etc/weir/users

  # a quick test user; the password is hashed in memory, but stays
  # visible in the process list, so prefer --users for anything real
  weir forward-proxy --auth alice:s3cret
  curl -x http://alice:s3cret@127.0.0.1:3128 http://example.com/

  # spread clients over two egress addresses, one per session
  weir forward-proxy --users users --source-addrs 192.0.2.10,192.0.2.11 \
      --source-mode sticky

  # local development: reach services on this machine, tunnels to 8443 too
  weir forward-proxy --allow-private --connect-ports 443,8443 --udp

  # go out through another proxy (an HTTP one, or socks5://...)
  weir forward-proxy --upstream-proxy http://me:pw@proxy.corp.example:3128

  # an HTTPS proxy with MASQUE, each user held to 10 connections and
  # 1 MiB/s each way
  weir forward-proxy --listen :3128 --users users --tls-cert cert.pem \
      --tls-key key.pem --http3 --user-max-conns 10 --user-rate 1MiB
  curl --proxy https://alice:s3cret@proxy.example:3128 https://example.com/

  # resolve with given nameservers, or DNS over HTTPS
  weir forward-proxy --dns-server 192.0.2.53 --dns-server 192.0.2.54
  weir forward-proxy --doh https://dns.example/dns-query

  # per-user bytes and requests for Prometheus, at
  # http://127.0.0.1:9090/metrics (proxy label "default")
  weir forward-proxy --users users --listen :3128 --metrics 127.0.0.1:9090

Users file: one "name:hash" per line, bcrypt ("htpasswd -nbB NAME PASS")
or argon2id; see docs/forward-proxy.md.

Signals: SIGTERM or SIGINT drain (stop accepting, let requests and
tunnels finish for up to --shutdown-grace); SIGHUP reloads the users file.

Flags:
`

// forwardProxyMain runs `weir forward-proxy` and returns the exit code: 0
// after a clean drain, 1 when the proxy cannot start, 2 for bad flags.
func forwardProxyMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forward-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Help goes to stdout, on request only; a mistake gets the error
	// (printed by the flag package) and a pointer to the help.
	fs.Usage = func() {}
	var (
		o            forward.Options
		auth         []string
		usersPath    string
		connectPorts string
		httpPorts    string
		sourceAddrs  string
		sourceMode   string
		stickyTTL    time.Duration
		accessLog    string
		logFormat    string
		logLevel     string
		grace        time.Duration
		tlsCert      string
		tlsKey       string
		userRate     string
		metricsAddr  string
	)
	fs.StringVar(&o.Listen, "listen", forward.DefaultListen, "`ADDR` to listen on; anything but a loopback address needs --auth, --users or --allow-open")
	fs.Func("auth", "a user, as `USER:PASS`; repeat for several (the password is hashed in memory)", func(v string) error {
		if !strings.Contains(v, ":") {
			return errors.New("want USER:PASS")
		}
		auth = append(auth, v)
		return nil
	})
	fs.StringVar(&usersPath, "users", "", "users `FILE`: one name:bcrypt-or-argon2id-hash per line, reloaded when it changes")
	fs.BoolVar(&o.Policy.AllowPrivate, "allow-private", false, "let clients reach loopback, private and link-local addresses (for a proxy in front of a private network, or tests)")
	fs.Func("allow-cidr", "let clients reach this otherwise refused `CIDR`, like 10.1.0.0/16; repeatable", func(v string) error {
		p, err := netip.ParsePrefix(v)
		o.Policy.AllowCIDRs = append(o.Policy.AllowCIDRs, p)
		return err
	})
	fs.Func("deny-cidr", "refuse this `CIDR` always, even with --allow-private; repeatable", func(v string) error {
		p, err := netip.ParsePrefix(v)
		o.Policy.DenyCIDRs = append(o.Policy.DenyCIDRs, p)
		return err
	})
	fs.BoolVar(&o.AllowOpen, "allow-open", false, "run without authentication on a non-loopback address (anyone who reaches the port can use the proxy)")
	fs.StringVar(&connectPorts, "connect-ports", "443", "`PORTS` tunnels (CONNECT, SOCKS5) may reach, comma-separated, like 443,8443")
	fs.StringVar(&httpPorts, "http-ports", "", "`PORTS` plain http:// requests may reach, comma-separated (default: any)")
	fs.StringVar(&sourceAddrs, "source-addrs", "", "local `ADDRS` outbound connections come from, comma-separated, like 192.0.2.10,192.0.2.11 (default: the kernel chooses)")
	fs.StringVar(&sourceMode, "source-mode", egress.ModeRoundRobin, "how a source address is picked: round_robin (each connection the next), by_user (one per user) or sticky (one per user session)")
	fs.DurationVar(&stickyTTL, "sticky-ttl", egress.DefaultStickyTTL, "how long an unused sticky session keeps its source address")
	fs.StringVar(&o.Upstream, "upstream-proxy", "", "send every outbound connection through this next proxy `URL`: http://[USER:PASS@]HOST:PORT or socks5://[USER:PASS@]HOST:PORT (not with --udp)")
	fs.BoolVar(&o.UDP, "udp", false, "let SOCKS5 clients relay UDP (UDP ASSOCIATE), under the same destination rules")
	fs.BoolVar(&o.SOCKS5Bind, "socks-bind", false, "let SOCKS5 clients use BIND: accept one connection from the address they name (checked by the same destination rules) within 2 minutes, and relay it (not with --upstream-proxy)")
	fs.StringVar(&tlsCert, "tls-cert", "", "also serve the proxy over TLS (HTTPS proxy, HTTP/2 CONNECT) with the certificate in this PEM `FILE`, on the same port; needs --tls-key")
	fs.StringVar(&tlsKey, "tls-key", "", "the certificate's private key, a PEM `FILE`; needs --tls-cert")
	fs.BoolVar(&o.HTTP3, "http3", false, "also serve MASQUE (CONNECT-UDP over HTTP/3) on the UDP port of the same number; needs --tls-cert and --tls-key")
	fs.IntVar(&o.UserLimits.MaxConns, "user-max-conns", 0, "at most `N` tunnels, requests in flight, UDP associations and MASQUE flows at once per user (per client address without users); 0: no limit")
	fs.StringVar(&userRate, "user-rate", "", "at most `RATE` bytes per second per user in each direction, like 512KiB, 1MiB or 10MB; empty or 0: no limit")
	fs.Func("dns-server", "resolve names with this nameserver `ADDR` (ip or ip:port) instead of those of /etc/resolv.conf; repeatable", func(v string) error {
		o.DNS.Servers = append(o.DNS.Servers, v)
		return nil
	})
	fs.StringVar(&o.DNS.DoH, "doh", "", "resolve names with DNS over HTTPS at this `URL`, like https://dns.example/dns-query (not with --dns-server)")
	fs.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at /metrics on this `ADDR`, like 127.0.0.1:9090 (default: no metrics; see docs/metrics.md)")
	fs.StringVar(&accessLog, "access-log", "stdout", "where access lines go: stdout, stderr, off or a file `PATH`")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&grace, "shutdown-grace", limits.ShutdownGrace, "how long a drain waits for requests and tunnels before closing them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, forwardProxyHelp)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, "see: weir forward-proxy --help")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weir forward-proxy: unexpected argument %q (see weir forward-proxy --help)\n", fs.Arg(0))
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "weir forward-proxy: "+format+"\n", a...)
		return 2
	}
	var err error
	if o.Policy.ConnectPorts, err = parsePorts(connectPorts); err != nil {
		return usage("--connect-ports: %v", err)
	}
	if o.Policy.HTTPPorts, err = parsePorts(httpPorts); err != nil {
		return usage("--http-ports: %v", err)
	}
	if sourceAddrs != "" {
		for a := range strings.SplitSeq(sourceAddrs, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil {
				return usage("--source-addrs: %q is not an IP address", a)
			}
			o.Sources.Addrs = append(o.Sources.Addrs, ip)
		}
		o.Sources.Mode, o.Sources.StickyTTL = sourceMode, stickyTTL
	}
	if o.UserLimits.MaxConns < 0 {
		return usage("--user-max-conns: want 0 or more, not %d", o.UserLimits.MaxConns)
	}
	if o.UserLimits.BytesPerSecond, err = parseByteSize(userRate); err != nil {
		return usage("--user-rate: %v", err)
	}
	if (tlsCert == "") != (tlsKey == "") {
		return usage("--tls-cert and --tls-key go together")
	}
	if o.HTTP3 && tlsCert == "" {
		return usage("--http3 needs --tls-cert and --tls-key: HTTP/3 always runs over TLS")
	}
	if o.HTTP3 && o.Upstream != "" {
		return usage("--http3 relays UDP, which cannot go through --upstream-proxy")
	}
	if o.SOCKS5Bind && o.Upstream != "" {
		return usage("--socks-bind cannot be used with --upstream-proxy: the incoming connection would bypass the next proxy")
	}
	if o.DNS.DoH != "" && len(o.DNS.Servers) > 0 {
		return usage("--doh and --dns-server cannot be used together")
	}
	if metricsAddr != "" {
		if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
			return usage("--metrics: %q is not an address like 127.0.0.1:9090", metricsAddr)
		}
		if metricsAddr == o.Listen {
			return usage("--metrics: %s is the proxy's own address (--listen); give the metrics a port of their own", metricsAddr)
		}
	}
	if logFormat != "text" && logFormat != "json" {
		return usage("--log-format: want text or json, not %q", logFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usage("--log-level: want debug, info, warn or error, not %q", logLevel)
	}
	log := newForwardLogger(stderr, logFormat, level)
	o.Logger = log

	var auths multiAuth
	if len(auth) > 0 {
		u, err := flagUsers(auth)
		if err != nil {
			return usage("--auth: %v", err)
		}
		auths = append(auths, u)
	}
	if usersPath != "" {
		u, err := proxyauth.Load(usersPath)
		if err != nil {
			fmt.Fprintf(stderr, "weir forward-proxy: --users: %v\n", err)
			return 1
		}
		defer u.Close()
		err = u.Watch(0, func(err error) {
			if err != nil {
				log.Error("users file not reloaded; the previous users stay", "file", usersPath, "err", err)
				return
			}
			log.Info("users file reloaded", "file", usersPath, "users", u.Len())
		})
		if err != nil {
			fmt.Fprintf(stderr, "weir forward-proxy: --users: %v\n", err)
			return 1
		}
		auths = append(auths, u)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				if err := u.Reload(); err != nil {
					log.Error("users file not reloaded; the previous users stay", "file", usersPath, "err", err)
				} else {
					log.Info("users file reloaded", "file", usersPath, "users", u.Len())
				}
			}
		}()
	}
	switch len(auths) {
	case 0:
	case 1:
		o.Auth = auths[0]
	default:
		o.Auth = auths
	}

	if accessLog != "off" {
		w := stdout
		switch accessLog {
		case "stdout":
		case "stderr":
			w = stderr
		default:
			f, err := os.OpenFile(accessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				fmt.Fprintf(stderr, "weir forward-proxy: --access-log: %v\n", err)
				return 1
			}
			defer f.Close()
			w = f
		}
		o.AccessLog = newForwardLogger(w, logFormat, slog.LevelInfo)
	}

	if tlsCert != "" {
		ts, err := tlsconf.NewServer(tlsconf.ServerOptions{
			Certs: []tlsconf.CertFiles{{CertFile: tlsCert, KeyFile: tlsKey}},
			OnReload: func(err error) {
				if err != nil {
					log.Error("certificate not reloaded; the previous one stays", "err", err)
				} else {
					log.Info("certificate reloaded", "file", tlsCert)
				}
			},
		})
		if err != nil {
			fmt.Fprintf(stderr, "weir forward-proxy: %v\n", err)
			return 1
		}
		defer ts.Close()
		o.TLS = ts.TLSConfig()
	}

	// Signal handlers go in before the port opens, so that a SIGTERM sent
	// as soon as the port answers always drains.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := forward.New(o)
	if err != nil {
		fmt.Fprintf(stderr, "weir forward-proxy: %v\n", err)
		return 1
	}
	var endpoint *metrics.Endpoint
	if metricsAddr != "" {
		reg := metrics.NewRegistry(weir.Version)
		c := metrics.NewForwardCollector(metrics.DefaultMaxForwardUsers)
		c.Add(forwardMetricsName, srv)
		reg.MustRegister(c)
		if endpoint, err = metrics.Listen(metricsAddr, metrics.DefaultPath, reg, log); err != nil {
			_ = srv.Close()
			fmt.Fprintf(stderr, "weir forward-proxy: --metrics: %v\n", err)
			return 1
		}
		defer endpoint.Close()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	metricsFailed := make(chan error, 1)
	if endpoint != nil {
		log.Info("serving metrics", "address", endpoint.Addr().String(), "path", metrics.DefaultPath)
		go func() {
			if err := endpoint.Serve(); err != nil {
				metricsFailed <- err
			}
		}()
	}
	select {
	case err := <-served:
		log.Error("stopped with an error", "err", err)
		return 1
	case err := <-metricsFailed:
		log.Error("metrics stopped with an error", "err", err)
		_ = srv.Close()
		return 1
	case <-ctx.Done():
	}
	log.Info("draining", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("drain cut short; remaining connections closed", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, forward.ErrServerClosed) {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	if endpoint != nil {
		mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer mcancel()
		_ = endpoint.Shutdown(mctx)
	}
	log.Info("stopped")
	return 0
}

// forwardMetricsName is the proxy label of the forward proxy that
// `weir forward-proxy` runs.
const forwardMetricsName = "default"

func newForwardLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parseByteSize reads a byte count: a number with an optional unit, B,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), like
// "512KiB" or "1.5MB". Empty means 0.
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[strings.ToLower(unit)]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n < 0 || n*mult > 1<<50 {
		return 0, fmt.Errorf("%q is not a size like 512KiB, 1MiB or 10MB", s)
	}
	return int64(n * mult), nil
}

// parsePorts reads "443,8443"; empty gives nil.
func parsePorts(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []uint16
	for p := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a port (1 to 65535)", p)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// flagUsers builds users from --auth USER:PASS values: each password is
// hashed (bcrypt) and the hashes loaded through a users file that exists
// only for the time it takes to read it, so the flags get the same checks,
// throttling and caching as --users.
func flagUsers(creds []string) (*proxyauth.Users, error) {
	var b strings.Builder
	for i, c := range creds {
		user, pass, _ := strings.Cut(c, ":")
		if user == "" || pass == "" {
			return nil, fmt.Errorf("#%d: want USER:PASS with both parts non-empty", i+1)
		}
		h, err := proxyauth.HashPassword(pass)
		if err != nil {
			return nil, fmt.Errorf("user %q: %v", user, err)
		}
		b.WriteString(user)
		b.WriteByte(':')
		b.WriteString(h)
		b.WriteByte('\n')
	}
	f, err := os.CreateTemp("", "weir-users-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	u, err := proxyauth.Load(f.Name())
	var pe *proxyauth.ParseError
	if errors.As(err, &pe) && pe.Line > 0 {
		user, _, _ := strings.Cut(creds[pe.Line-1], ":")
		return nil, fmt.Errorf("user %q: %s", user, pe.Reason)
	}
	return u, err
}

// multiAuth accepts credentials any of its members accepts.
type multiAuth []forward.Authenticator

func (m multiAuth) Check(user, pass string) bool {
	for _, a := range m {
		if a.Check(user, pass) {
			return true
		}
	}
	return false
}
