package resolver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Defaults of [DNSConfig]. Each applies when the matching field is zero
// and /etc/resolv.conf does not set it either.
const (
	// DefaultResolvConf is where nameservers are read from when none are
	// configured.
	DefaultResolvConf = "/etc/resolv.conf"

	// DefaultAttemptTimeout is how long one nameserver has to answer one
	// query before the next is tried.
	DefaultAttemptTimeout = 2 * time.Second

	// DefaultAttempts is how many times the whole list of nameservers is
	// tried before a lookup fails.
	DefaultAttempts = 2

	// MaxResolvConfNameservers is how many "nameserver" lines of
	// resolv.conf are used; later ones are ignored, as the C library does.
	MaxResolvConfNameservers = 3

	// MaxResolvConfTimeout and MaxResolvConfAttempts bound the "timeout:"
	// and "attempts:" options read from resolv.conf, as the C library
	// does.
	MaxResolvConfTimeout  = 30 * time.Second
	MaxResolvConfAttempts = 5

	// DNSPort is the port of a nameserver given without one.
	DNSPort = 53
)

// DNSConfig configures a [DNSClient]. Every zero field takes its value
// from resolv.conf or, failing that, its default.
type DNSConfig struct {
	// Servers are the nameservers, as "ip" or "ip:port" ("[ipv6]:port"),
	// asked in order. Empty means the nameservers of ResolvConf.
	Servers []string
	// ResolvConf is the file nameservers and options are read from when
	// Servers is empty (default DefaultResolvConf). When it is missing or
	// lists no nameserver, the local host is asked (127.0.0.1:53 and
	// [::1]:53), as the C library does.
	ResolvConf string
	// AttemptTimeout bounds one query to one nameserver (default: the
	// "timeout:" option of resolv.conf, else DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// Attempts is how many rounds over the nameservers are made (default:
	// the "attempts:" option of resolv.conf, else DefaultAttempts).
	Attempts int
}

// DNSClient is a [Backend] that asks nameservers over UDP, and over TCP
// when an answer comes back truncated. Each query goes out from a fresh
// socket, so from a port the kernel picks at random, with a random
// 16-bit ID; only answers from the nameserver's address that carry that ID
// and repeat the question are accepted, others are ignored while waiting.
// Queries advertise an EDNS(0) payload of EDNSPayloadSize bytes. A
// nameserver that times out, fails to connect or answers with an error
// code (SERVFAIL, REFUSED, ...) is skipped for the next one.
type DNSClient struct {
	servers        []string
	attemptTimeout time.Duration
	attempts       int
	dialer         net.Dialer
}

// NewDNSClient returns a DNSClient configured by cfg. It fails when a
// configured server is not an IP address with an optional port.
func NewDNSClient(cfg DNSConfig) (*DNSClient, error) {
	c := &DNSClient{attemptTimeout: cfg.AttemptTimeout, attempts: cfg.Attempts}
	for _, s := range cfg.Servers {
		addr, err := parseServer(s)
		if err != nil {
			return nil, fmt.Errorf("resolver: nameserver %q: %v", s, err)
		}
		c.servers = append(c.servers, addr)
	}
	if len(c.servers) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		rc := readResolvConf(path)
		c.servers = rc.servers
		if c.attemptTimeout == 0 {
			c.attemptTimeout = rc.timeout
		}
		if c.attempts == 0 {
			c.attempts = rc.attempts
		}
	}
	if len(c.servers) == 0 {
		c.servers = []string{"127.0.0.1:53", "[::1]:53"}
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = DefaultAttemptTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultAttempts
	}
	return c, nil
}

// Servers returns the nameservers the client asks, as "ip:port".
func (c *DNSClient) Servers() []string { return append([]string(nil), c.servers...) }

// parseServer accepts "ip", "ip%zone", "ip:port" and "[ipv6]:port".
func parseServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", errors.New("port 0")
		}
		return ap.String(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return "", errors.New("not an IP address with an optional port")
	}
	return netip.AddrPortFrom(ip, DNSPort).String(), nil
}

// Query asks the nameservers for the addresses of name in family f.
func (c *DNSClient) Query(ctx context.Context, name string, f Family) (Answer, error) {
	q, err := newQuestion(name, f)
	if err != nil {
		return Answer{}, err
	}
	var lastErr error
	for range c.attempts {
		for _, server := range c.servers {
			if err := ctx.Err(); err != nil {
				return Answer{}, queryContextError(err, lastErr)
			}
			resp, err := c.exchange(ctx, server, q)
			if err == nil {
				var ans Answer
				if ans, err = resp.answer(); err == nil {
					return ans, nil
				}
			}
			lastErr = fmt.Errorf("nameserver %s: %w", server, err)
		}
	}
	return Answer{}, lastErr
}

// queryContextError explains why a query stopped when its context ended.
func queryContextError(ctxErr, lastErr error) error {
	if lastErr == nil {
		lastErr = ctxErr
	}
	if ctxErr == context.DeadlineExceeded && !errors.Is(lastErr, ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, lastErr)
	}
	return lastErr
}

// exchange asks one nameserver: over UDP, then over TCP when the UDP
// answer is truncated.
func (c *DNSClient) exchange(ctx context.Context, server string, q dnsmessage.Question) (response, error) {
	resp, err := c.exchangeUDP(ctx, server, q)
	if err != nil || !resp.truncated {
		return resp, err
	}
	resp, err = c.exchangeTCP(ctx, server, q)
	if err == nil && resp.truncated {
		err = errors.New("truncated answer over TCP")
	}
	return resp, err
}

// randomID returns an unpredictable query ID.
func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return binary.BigEndian.Uint16(b[:])
}

// attempt opens a connection to server for one attempt: its deadline is
// the attempt timeout or ctx's deadline, whichever comes first, and ending
// ctx ends any read or write in progress. The returned stop function must
// be called before the connection is closed.
func (c *DNSClient) attempt(ctx context.Context, network, server string) (net.Conn, func() bool, error) {
	deadline := time.Now().Add(c.attemptTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := c.dialer.DialContext(dctx, network, server)
	if err != nil {
		return nil, nil, netError(ctx, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, stop, nil
}

// netError classifies an I/O error of one attempt: deadlines become
// ErrTimeout, and a cancelled ctx reports that rather than the I/O error
// it caused.
func netError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr == context.Canceled {
		return ctxErr
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// exchangeUDP sends one query over UDP and waits for its answer, ignoring
// datagrams that do not answer it.
func (c *DNSClient) exchangeUDP(ctx context.Context, server string, q dnsmessage.Question) (response, error) {
	id := randomID()
	msg, err := buildQuery(id, q, true)
	if err != nil {
		return response{}, err
	}
	conn, stop, err := c.attempt(ctx, "udp", server)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	defer stop()
	if _, err := conn.Write(msg[2:]); err != nil {
		return response{}, netError(ctx, err)
	}
	buf := make([]byte, MaxUDPResponse)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return response{}, netError(ctx, err)
		}
		if n == len(buf) {
			// The datagram may have been cut to fit; if it is ours, ask
			// again over TCP as if it were marked truncated.
			if binary.BigEndian.Uint16(buf) == id && buf[2]&0x80 != 0 {
				return response{truncated: true}, nil
			}
			continue
		}
		resp, err := parseResponse(buf[:n], id, q)
		if err != nil {
			// Not ours, or malformed: keep waiting for the real answer
			// until the deadline, so a forged datagram cannot end the
			// query.
			continue
		}
		return resp, nil
	}
}

// exchangeTCP sends one query over TCP and reads its answer.
func (c *DNSClient) exchangeTCP(ctx context.Context, server string, q dnsmessage.Question) (response, error) {
	id := randomID()
	msg, err := buildQuery(id, q, false)
	if err != nil {
		return response{}, err
	}
	conn, stop, err := c.attempt(ctx, "tcp", server)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	defer stop()
	if _, err := conn.Write(msg); err != nil {
		return response{}, netError(ctx, err)
	}
	var prefix [2]byte
	if _, err := io.ReadFull(conn, prefix[:]); err != nil {
		return response{}, netError(ctx, err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return response{}, netError(ctx, err)
	}
	return parseResponse(buf, id, q)
}
