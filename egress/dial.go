package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/weirproxy/weir/limits"
)

// Dialer defaults.
const (
	// DefaultConnectTimeout bounds one whole DialContext (resolution and
	// every connection attempt) when Dialer.Timeout is 0: the same bound
	// Weir puts on a connect to a reverse-proxy peer.
	DefaultConnectTimeout = limits.ConnectTimeout

	// DefaultAttemptDelay is the Happy Eyeballs "Connection Attempt Delay"
	// (RFC 8305 section 5): how long an attempt runs alone before the next
	// address is tried beside it.
	DefaultAttemptDelay = 250 * time.Millisecond

	// MinAttemptDelay is the smallest attempt delay the Dialer uses; RFC
	// 8305 forbids going below 10 ms. A smaller Dialer.AttemptDelay is
	// raised to it.
	MinAttemptDelay = 10 * time.Millisecond

	// DefaultMaxAttempts bounds how many addresses of one name a single
	// dial tries, so that a name with hundreds of addresses cannot turn one
	// client request into hundreds of outbound connection attempts.
	DefaultMaxAttempts = 16
)

// Resolver looks up the addresses of a host name. Weir calls it once per
// dial and connects only to what it returned.
type Resolver interface {
	// LookupNetIP returns the IPv4 and IPv6 addresses of host.
	LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// NetResolver is the default Resolver: it asks a *net.Resolver for both
// address families.
type NetResolver struct {
	// Resolver does the lookups; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// LookupNetIP returns the IPv4 and IPv6 addresses of host, in the order
// the Go resolver sorts them (RFC 6724).
func (r NetResolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	res := r.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	return res.LookupNetIP(ctx, "ip", host)
}

// DialOptions are the per-connection choices of one DialContext.
type DialOptions struct {
	// LocalAddr, when valid, is the source address the connection is bound
	// to (for example one picked from a SourcePool). Only destination
	// addresses of the same family are tried.
	LocalAddr netip.Addr

	// Forward marks a connection for a request Weir forwards itself (HTTP
	// absolute-form): its port is checked against PolicyConfig.HTTPPorts.
	// The zero value checks the port as a tunnel's (CONNECT, SOCKS5),
	// against ConnectPorts, the stricter list.
	Forward bool
}

// Dialer opens outbound connections for the forward proxy. It checks the
// destination with its Policy, resolves a name once, checks every address,
// and connects only to the addresses it checked, racing them with Happy
// Eyeballs (RFC 8305). The zero value is ready to use, with the default
// Policy and the system resolver. A Dialer must not be changed while in use;
// it is safe for concurrent use.
type Dialer struct {
	// Policy decides what may be reached; nil means the default policy (the
	// zero PolicyConfig).
	Policy *Policy

	// Resolver looks names up; nil means NetResolver{}.
	Resolver Resolver

	// Timeout bounds one whole DialContext: resolution and every attempt.
	// 0 means DefaultConnectTimeout. The context's deadline, if sooner,
	// wins.
	Timeout time.Duration

	// AttemptDelay is how long one connection attempt runs alone before the
	// next address is tried beside it. 0 means DefaultAttemptDelay; values
	// below MinAttemptDelay are raised to it.
	AttemptDelay time.Duration

	// MaxAttempts bounds how many resolved addresses one dial tries. 0
	// means DefaultMaxAttempts.
	MaxAttempts int

	// KeepAlive is the TCP keep-alive period of the connections, as in
	// net.Dialer: 0 means Go's default, negative turns keep-alives off.
	KeepAlive time.Duration

	// Control, if not nil, is called with each socket before it connects,
	// as in net.Dialer (to set a firewall mark or other socket options).
	Control func(network, address string, c syscall.RawConn) error

	// dial replaces the real connect in tests; nil uses net.Dialer.
	dial func(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error)
}

// SplitHostPort splits a destination "host:port" as a client writes it in
// CONNECT, an absolute-form URL's authority or a SOCKS5 request. IPv6
// literals must be bracketed ("[::1]:443") and may carry a zone. The port
// must be a decimal number from 0 to 65535; service names are not looked
// up. host is returned without brackets.
func SplitHostPort(hostport string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	if h == "" {
		return "", 0, errors.New("egress: missing host in " + strconv.Quote(hostport))
	}
	if p == "" || len(p) > 5 {
		return "", 0, errors.New("egress: invalid port in " + strconv.Quote(hostport))
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return "", 0, errors.New("egress: invalid port in " + strconv.Quote(hostport))
		}
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, errors.New("egress: invalid port in " + strconv.Quote(hostport))
	}
	return h, uint16(n), nil
}

// DialContext connects to hostport ("name:port", "1.2.3.4:port" or
// "[v6]:port") over network "tcp", "tcp4" or "tcp6", and returns the
// connection and the address it connected to.
//
// The port is checked first (as a tunnel's unless opts.Forward). An IP
// literal, in any form netip.ParseAddr accepts (including "::ffff:127.0.0.1"
// and zones), is checked with Policy.CheckName. A name is checked with
// CheckName, resolved once, and every address is checked with CheckAddr;
// refused addresses are dropped, and if none is left DialContext returns the
// *Refused of the first. Only the addresses that passed are dialed, never
// the name again.
//
// The addresses are raced with Happy Eyeballs v2 (RFC 8305): families
// alternate, IPv6 first; each attempt runs alone for AttemptDelay, or less
// if it fails first, before the next starts beside it; the first connection
// wins and the others are cancelled and closed. When opts.LocalAddr is set,
// only addresses of its family are tried and the connection is bound to it.
//
// Errors are a *Refused for a destination the policy refuses or that is
// malformed, otherwise the resolver's or the first connection attempt's
// error.
func (d *Dialer) DialContext(ctx context.Context, network, hostport string, opts DialOptions) (net.Conn, netip.AddrPort, error) {
	want, err := tcpFamily(network)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	host, port, err := SplitHostPort(hostport)
	if err != nil {
		return nil, netip.AddrPort{}, refuse(reasonInvalid)
	}
	if err := d.Policy.CheckPort(port, !opts.Forward); err != nil {
		return nil, netip.AddrPort{}, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	local := opts.LocalAddr.Unmap()
	if local.IsValid() {
		want &= familyOf(local)
	}
	addrs, err := d.resolve(ctx, host, want)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	targets := interleave(addrs, port)
	limit := d.MaxAttempts
	if limit <= 0 {
		limit = DefaultMaxAttempts
	}
	if len(targets) > limit {
		targets = targets[:limit]
	}
	return d.race(ctx, local, targets)
}

// ResolveUDP checks and resolves a UDP destination (for SOCKS5 UDP
// ASSOCIATE or MASQUE) under the same Policy as DialContext, with the port
// checked against PolicyConfig.UDPPorts (any port but 0 by default). It
// returns the first address that passes, in resolver order. The caller
// sends to that address, never to the name.
func (d *Dialer) ResolveUDP(ctx context.Context, hostport string) (netip.AddrPort, error) {
	return d.ResolveUDPFrom(ctx, hostport, netip.Addr{})
}

// ResolveUDPFrom is ResolveUDP for a socket bound to local: only addresses
// of local's family are returned. An invalid local means any family.
func (d *Dialer) ResolveUDPFrom(ctx context.Context, hostport string, local netip.Addr) (netip.AddrPort, error) {
	host, port, err := SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, refuse(reasonInvalid)
	}
	if err := d.Policy.checkUDPPort(port); err != nil {
		return netip.AddrPort{}, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := famAny
	if local = local.Unmap(); local.IsValid() {
		want = familyOf(local)
	}
	addrs, err := d.resolve(ctx, host, want)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addrs[0], port), nil
}

// Address families as a bit set.
const (
	fam4   = 1
	fam6   = 2
	famAny = fam4 | fam6
)

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return fam4
	}
	return fam6
}

func tcpFamily(network string) (int, error) {
	switch network {
	case "tcp":
		return famAny, nil
	case "tcp4":
		return fam4, nil
	case "tcp6":
		return fam6, nil
	}
	return 0, errors.New("egress: unsupported network " + strconv.Quote(network))
}

// resolve checks host and returns the addresses that may be dialed, in
// order, deduplicated, canonical (IPv4-mapped addresses unmapped), limited
// to the families in want. It never returns an empty slice without an error.
func (d *Dialer) resolve(ctx context.Context, host string, want int) ([]netip.Addr, error) {
	pol := d.Policy
	if ip, ok := parseLiteral(host); ok {
		if err := pol.checkLiteral(ip); err != nil {
			return nil, err
		}
		ip = ip.Unmap()
		if familyOf(ip)&want == 0 {
			return nil, errNoFamily(host, want)
		}
		return []netip.Addr{ip}, nil
	}
	if err := pol.CheckName(host); err != nil {
		return nil, err
	}
	r := d.Resolver
	if r == nil {
		r = NetResolver{}
	}
	found, err := r.LookupNetIP(ctx, host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(found))
	var firstRefusal error
	otherFamily := false
	for _, a := range found {
		if err := pol.CheckAddr(a); err != nil {
			if firstRefusal == nil {
				firstRefusal = err
			}
			continue
		}
		a = a.Unmap()
		if familyOf(a)&want == 0 {
			otherFamily = true
			continue
		}
		if !containsAddr(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if otherFamily {
		return nil, errNoFamily(host, want)
	}
	if firstRefusal != nil {
		return nil, firstRefusal
	}
	return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

func errNoFamily(host string, want int) error {
	fam := "IPv4"
	if want == fam6 {
		fam = "IPv6"
	}
	return fmt.Errorf("egress: %s has no allowed %s address", strconv.Quote(host), fam)
}

// interleave orders addrs for Happy Eyeballs (RFC 8305 section 4): IPv6 and
// IPv4 alternate, starting with IPv6 when there is any, each family keeping
// the resolver's order.
func interleave(addrs []netip.Addr, port uint16) []netip.AddrPort {
	var v6, v4 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for i := 0; i < len(v6) || i < len(v4); i++ {
		if i < len(v6) {
			out = append(out, netip.AddrPortFrom(v6[i], port))
		}
		if i < len(v4) {
			out = append(out, netip.AddrPortFrom(v4[i], port))
		}
	}
	return out
}

type attempt struct {
	conn   net.Conn
	remote netip.AddrPort
	err    error
}

// race connects to the first of targets that answers, starting a new
// attempt every AttemptDelay or as soon as the previous one fails.
func (d *Dialer) race(ctx context.Context, local netip.Addr, targets []netip.AddrPort) (net.Conn, netip.AddrPort, error) {
	if len(targets) == 1 {
		c, err := d.dialOne(ctx, local, targets[0])
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		return c, targets[0], nil
	}
	delay := d.AttemptDelay
	if delay == 0 {
		delay = DefaultAttemptDelay
	}
	if delay < MinAttemptDelay {
		delay = MinAttemptDelay
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Buffered for every attempt, so an attempt never blocks on a sender
	// that has already returned.
	results := make(chan attempt, len(targets))
	next, running := 0, 0
	start := func() {
		t := targets[next]
		next++
		running++
		go func() {
			c, err := d.dialOne(ctx, local, t)
			results <- attempt{conn: c, remote: t, err: err}
		}()
	}
	start()
	timer := time.NewTimer(delay)
	defer timer.Stop()

	var firstErr error
	for {
		select {
		case r := <-results:
			running--
			if r.err == nil {
				cancel()
				closeLosers(results, running)
				return r.conn, r.remote, nil
			}
			if firstErr == nil {
				firstErr = r.err
			}
			if next < len(targets) && ctx.Err() == nil {
				start()
				timer.Reset(delay)
			} else if running == 0 {
				return nil, netip.AddrPort{}, firstErr
			}
		case <-timer.C:
			if next < len(targets) {
				start()
				timer.Reset(delay)
			}
		case <-ctx.Done():
			cancel()
			closeLosers(results, running)
			if firstErr == nil {
				firstErr = fmt.Errorf("egress: dial %s: %w", targets[0], ctx.Err())
			}
			return nil, netip.AddrPort{}, firstErr
		}
	}
}

// closeLosers collects the attempts still running and closes any that
// connected after the race was decided.
func closeLosers(results <-chan attempt, running int) {
	if running == 0 {
		return
	}
	go func() {
		for ; running > 0; running-- {
			if r := <-results; r.conn != nil {
				r.conn.Close()
			}
		}
	}()
}

func (d *Dialer) dialOne(ctx context.Context, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
	if d.dial != nil {
		return d.dial(ctx, local, remote)
	}
	nd := net.Dialer{KeepAlive: d.KeepAlive, Control: d.Control}
	if local.IsValid() {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	network := "tcp4"
	if remote.Addr().Is6() {
		network = "tcp6"
	}
	return nd.DialContext(ctx, network, remote.String())
}
