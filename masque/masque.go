// Package masque is Weir's CONNECT-UDP (RFC 9298) over HTTP/3: a client
// asks, with an extended CONNECT request (:protocol connect-udp) to
// /.well-known/masque/udp/{host}/{port}/, for a UDP flow to a target, and
// the UDP payloads then travel as HTTP datagrams (RFC 9297) on that
// request's stream, each prefixed with the context ID 0. QUIC traffic
// (HTTP/3 itself, for instance) can go through Weir this way.
//
// Handler is the proxy side, for an http3.Server with EnableDatagrams;
// Dial is a client, used by Weir's tests and usable by programs.
//
// Limits: a datagram payload is at most MaxPayload bytes (what fits in one
// QUIC datagram on a 1500-byte path is less); a flow with no traffic
// either way for IdleTimeout (default DefaultIdleTimeout) is closed.
package masque

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
)

// Protocol is the :protocol of a CONNECT-UDP request.
const Protocol = "connect-udp"

// PathPrefix is the start of the default URI template's path.
const PathPrefix = "/.well-known/masque/udp/"

// Limits.
const (
	// MaxPayload bounds a UDP payload relayed either way.
	MaxPayload = 65527
	// DefaultIdleTimeout closes a flow without traffic either way.
	DefaultIdleTimeout = 2 * time.Minute
	// MaxHostLen bounds the target host in the path.
	MaxHostLen = 255
)

// ErrBadTarget is returned by ParseTarget for a path that is not the
// CONNECT-UDP template or names an invalid target.
var ErrBadTarget = errors.New("masque: bad CONNECT-UDP target")

// ParseTarget reads the target host and port from a request path of the
// form /.well-known/masque/udp/{host}/{port}/ (RFC 9298 2). The host may
// be a name, an IPv4 address or a percent-encoded IPv6 address.
func ParseTarget(path string) (host string, port uint16, err error) {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return "", 0, ErrBadTarget
	}
	rest, ok = strings.CutSuffix(rest, "/")
	if !ok {
		return "", 0, ErrBadTarget
	}
	h, p, ok := strings.Cut(rest, "/")
	if !ok || h == "" || p == "" || strings.Contains(p, "/") {
		return "", 0, ErrBadTarget
	}
	h, err = url.PathUnescape(h)
	if err != nil || len(h) > MaxHostLen {
		return "", 0, ErrBadTarget
	}
	if a, aerr := netip.ParseAddr(h); aerr == nil {
		if a.Zone() != "" {
			return "", 0, ErrBadTarget
		}
		h = a.String()
	} else if !validName(h) {
		return "", 0, ErrBadTarget
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || p[0] == '0' || p[0] == '+' {
		return "", 0, ErrBadTarget
	}
	return h, uint16(n), nil
}

// validName accepts host names made of letters, digits, '-', '_' and
// dots, so that nothing hostile reaches a resolver or a log.
func validName(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// TargetPath is the request path for host and port.
func TargetPath(host string, port uint16) string {
	return PathPrefix + url.PathEscape(host) + "/" + strconv.Itoa(int(port)) + "/"
}

// ParseDatagram splits an HTTP datagram's payload into its context ID and
// data (RFC 9298 5).
func ParseDatagram(b []byte) (ctxID uint64, data []byte, err error) {
	id, n, err := quicvarint.Parse(b)
	if err != nil {
		return 0, nil, err
	}
	return id, b[n:], nil
}

// Handler serves CONNECT-UDP requests. Other requests get 400 (or go to
// Next when set).
type Handler struct {
	// Resolve checks the target against the egress policy and resolves
	// it. An error refuses the request: a *Refusal with its status and
	// Proxy-Status (RFC 9209) error type, any other error with 403
	// destination_ip_prohibited; the error's text goes in the
	// Proxy-Status details. Required.
	Resolve func(ctx context.Context, host string, port uint16) (netip.AddrPort, error)
	// Allow, when set, is asked before each datagram is relayed (toward
	// the target when toTarget, else back to the client); false drops it,
	// as a congested path would. It is how a rate limit applies to UDP.
	Allow func(r *http.Request, toTarget bool, n int) bool
	// Authorize, when set, sees the request first; a non-zero status
	// answers it (407 for missing proxy credentials, say).
	Authorize func(w http.ResponseWriter, r *http.Request) (status int)
	// LocalAddr, when set, picks the source address of a flow.
	LocalAddr func(r *http.Request) netip.Addr
	// IdleTimeout closes quiet flows (zero: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Next serves requests that are not CONNECT-UDP (nil: 400).
	Next http.Handler
	// OnFlow, when set, is told when a flow ends, with its byte counts.
	OnFlow func(r *http.Request, target netip.AddrPort, up, down int64, err error)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect || r.Proto != Protocol {
		if h.Next != nil {
			h.Next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "only CONNECT-UDP is served here", http.StatusBadRequest)
		return
	}
	if h.Authorize != nil {
		if st := h.Authorize(w, r); st != 0 {
			w.WriteHeader(st)
			return
		}
	}
	host, port, err := ParseTarget(r.URL.Path)
	if err != nil {
		http.Error(w, "bad CONNECT-UDP target", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Capsule-Protocol") != "?1" {
		http.Error(w, "Capsule-Protocol: ?1 is required", http.StatusBadRequest)
		return
	}
	target, err := h.Resolve(r.Context(), host, port)
	if err != nil {
		status, errType := http.StatusForbidden, "destination_ip_prohibited"
		var rf *Refusal
		if errors.As(err, &rf) {
			status, errType = rf.Status, rf.ErrorType
		}
		w.Header().Set("Proxy-Status", fmt.Sprintf("weir; error=%s; details=%q", errType, err.Error()))
		w.WriteHeader(status)
		return
	}
	laddr := &net.UDPAddr{}
	if h.LocalAddr != nil {
		if a := h.LocalAddr(r); a.IsValid() {
			laddr.IP = a.AsSlice()
		}
	}
	uc, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(target))
	if err != nil {
		w.Header().Set("Proxy-Status", fmt.Sprintf("weir; error=destination_unavailable; details=%q", err.Error()))
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer uc.Close()
	w.Header().Set("Capsule-Protocol", "?1")
	w.WriteHeader(http.StatusOK)
	hs, ok := w.(http3.HTTPStreamer)
	if !ok {
		return
	}
	str, err := hs.HTTPStream()
	if err != nil {
		return
	}
	var allow func(bool, int) bool
	if h.Allow != nil {
		allow = func(toTarget bool, n int) bool { return h.Allow(r, toTarget, n) }
	}
	up, down, err := relay(r.Context(), str, uc, h.idle(), allow)
	if h.OnFlow != nil {
		h.OnFlow(r, target, up, down, err)
	}
}

func (h *Handler) idle() time.Duration {
	if h.IdleTimeout > 0 {
		return h.IdleTimeout
	}
	return DefaultIdleTimeout
}

// datagramStream is what both ends of a flow relay over.
type datagramStream interface {
	SendDatagram([]byte) error
	ReceiveDatagram(context.Context) ([]byte, error)
	Read([]byte) (int, error)
	Close() error
}

// relay moves payloads between the stream's datagrams and the UDP socket
// until the stream ends, the context ends or the flow is idle.
func relay(ctx context.Context, str datagramStream, uc *net.UDPConn, idle time.Duration, allow func(toTarget bool, n int) bool) (up, down int64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	last := time.Now()
	touch := func() { mu.Lock(); last = time.Now(); mu.Unlock() }
	var wg sync.WaitGroup
	wg.Add(3)
	errc := make(chan error, 3)
	go func() { // client → target
		defer wg.Done()
		for {
			d, err := str.ReceiveDatagram(ctx)
			if err != nil {
				errc <- err
				return
			}
			id, data, perr := ParseDatagram(d)
			if perr != nil || id != 0 || len(data) > MaxPayload {
				continue // unknown contexts are dropped (RFC 9298 4)
			}
			touch()
			if allow != nil && !allow(true, len(data)) {
				continue
			}
			if _, err := uc.Write(data); err == nil {
				mu.Lock()
				up += int64(len(data))
				mu.Unlock()
			}
		}
	}()
	go func() { // target → client
		defer wg.Done()
		buf := make([]byte, 1+MaxPayload)
		for {
			_ = uc.SetReadDeadline(time.Now().Add(time.Second))
			n, err := uc.Read(buf[1:])
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
					mu.Lock()
					quiet := time.Since(last) > idle
					mu.Unlock()
					if quiet {
						errc <- ErrIdle
						return
					}
					continue
				}
				errc <- err
				return
			}
			touch()
			if allow != nil && !allow(false, n) {
				continue
			}
			buf[0] = 0 // context ID 0
			if err := str.SendDatagram(buf[:1+n]); err == nil {
				mu.Lock()
				down += int64(n)
				mu.Unlock()
			}
		}
	}()
	go func() { // the request stream: capsules are read and ignored; its end ends the flow
		defer wg.Done()
		b := make([]byte, 1024)
		for {
			if _, err := str.Read(b); err != nil {
				errc <- err
				return
			}
		}
	}()
	err = <-errc
	cancel()
	_ = uc.SetReadDeadline(time.Now())
	str.Close()
	wg.Wait()
	return up, down, err
}

// ErrIdle ends a flow that relayed nothing either way for the idle
// timeout; OnFlow gets it as the flow's error.
var ErrIdle = errors.New("masque: flow idle")

// Refusal is an error from Handler.Resolve that says how to answer.
type Refusal struct {
	Status    int    // e.g. 403, 502
	ErrorType string // Proxy-Status error type (RFC 9209 2.3), e.g. "dns_error"
	Details   string // safe to show the client
}

func (r *Refusal) Error() string { return r.Details }

// Conn is a client's UDP flow through a CONNECT-UDP proxy.
type Conn struct {
	str *http3.RequestStream
}

// Dial opens a CONNECT-UDP flow to target ("host:port") through the
// proxy at authority (host:port of its HTTP/3 endpoint) over cc, an
// HTTP/3 client connection with datagrams enabled. header adds request
// fields (Proxy-Authorization, say).
func Dial(ctx context.Context, cc *http3.ClientConn, authority, target string, header http.Header) (*Conn, *http.Response, error) {
	host, ps, err := net.SplitHostPort(target)
	if err != nil {
		return nil, nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, nil, fmt.Errorf("masque: bad port %q", ps)
	}
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if s := cc.Settings(); !s.EnableDatagrams || !s.EnableExtendedConnect {
		return nil, nil, errors.New("masque: proxy does not offer HTTP datagrams and extended CONNECT")
	}
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{"Capsule-Protocol": {"?1"}}
	for k, v := range header {
		h[k] = v
	}
	req := &http.Request{
		Method: http.MethodConnect,
		Proto:  Protocol,
		Host:   authority,
		Header: h,
		URL:    &url.URL{Scheme: "https", Host: authority, Path: TargetPath(host, uint16(port))},
	}
	if err := str.SendRequestHeader(req); err != nil {
		str.Close()
		return nil, nil, err
	}
	resp, err := str.ReadResponse()
	if err != nil {
		str.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		str.Close()
		return nil, resp, fmt.Errorf("masque: proxy answered %s", resp.Status)
	}
	return &Conn{str: str}, resp, nil
}

// Send sends one UDP payload to the target.
func (c *Conn) Send(p []byte) error {
	if len(p) > MaxPayload {
		return errors.New("masque: payload too large")
	}
	b := make([]byte, 1+len(p))
	copy(b[1:], p)
	return c.str.SendDatagram(b)
}

// Receive returns the next UDP payload from the target.
func (c *Conn) Receive(ctx context.Context) ([]byte, error) {
	for {
		d, err := c.str.ReceiveDatagram(ctx)
		if err != nil {
			return nil, err
		}
		if id, data, err := ParseDatagram(d); err == nil && id == 0 {
			return data, nil
		}
	}
}

// Close ends the flow.
func (c *Conn) Close() error {
	c.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
	return c.str.Close()
}
