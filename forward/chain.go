package forward

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/socks5"
)

// chain is the next proxy every outbound connection goes through, when
// Options.Upstream names one.
type chain struct {
	socks      bool   // SOCKS5; else an HTTP proxy
	addr       string // host:port of the next proxy
	user, pass string
	auth       string // Proxy-Authorization value for an HTTP proxy ("" without user)
	display    string // the URL without its password, for logs
}

// maxChainHead bounds the response head of the next proxy to a CONNECT.
const maxChainHead = 16 << 10

// parseChain reads Options.Upstream: "http://[user:pass@]host:port",
// "socks5://[user:pass@]host:port" or "socks5h://..." (the same: names
// are always sent to the next proxy for it to resolve).
func parseChain(raw string) (*chain, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy %q: %v", raw, err)
	}
	c := &chain{}
	switch u.Scheme {
	case "http":
	case "socks5", "socks5h":
		c.socks = true
	default:
		return nil, fmt.Errorf("upstream proxy %q: the scheme must be http, socks5 or socks5h", raw)
	}
	if u.Port() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("upstream proxy %q: want SCHEME://[USER:PASS@]HOST:PORT", u.Redacted())
	}
	c.addr = u.Host
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
		if c.user == "" {
			return nil, fmt.Errorf("upstream proxy %q: empty user name", u.Redacted())
		}
		if !c.socks {
			c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass))
		}
	}
	c.display = u.Redacted()
	return c, nil
}

// ChainError is the next proxy's refusal to connect to a destination.
type ChainError struct {
	// Status is the HTTP proxy's answer to CONNECT (0 for SOCKS5).
	Status int
	// Reply is the SOCKS5 proxy's reply code (0 for HTTP).
	Reply socks5.ReplyCode
}

func (e *ChainError) Error() string {
	if e.Status != 0 {
		return "the next proxy answered " + strconv.Itoa(e.Status)
	}
	return "the next proxy replied " + strconv.Itoa(int(e.Reply)) + " (" + e.Reply.String() + ")"
}

// dialOut opens an outbound TCP connection to dest for a tunnel, or for a
// forwarded request when forward is set: directly through the egress
// dialer, or through the next proxy. It returns the address connected to
// when it is known.
func (s *Server) dialOut(ctx context.Context, dest string, src netip.Addr, forward bool) (net.Conn, netip.AddrPort, error) {
	if s.chain == nil {
		return s.dialer.DialContext(ctx, "tcp", dest, egress.DialOptions{LocalAddr: src, Forward: forward})
	}
	// The next proxy resolves names, so only what can be known here is
	// checked: the port, and the name or address literal.
	host, port, err := egress.SplitHostPort(dest)
	if err != nil {
		return nil, netip.AddrPort{}, &egress.Refused{Reason: "invalid destination"}
	}
	if err := s.policy.CheckPort(port, !forward); err != nil {
		return nil, netip.AddrPort{}, err
	}
	if err := s.policy.CheckName(host); err != nil {
		return nil, netip.AddrPort{}, err
	}
	c, err := s.dialChainProxy(ctx, src)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	_ = c.SetDeadline(time.Now().Add(s.opts.ConnectTimeout))
	if s.chain.socks {
		_, err = socks5.ClientHandshake(c, dest, s.chain.user, s.chain.pass)
		var re *socks5.ReplyError
		if errors.As(err, &re) {
			err = &ChainError{Reply: re.Code}
		}
	} else {
		c, err = s.chainConnect(c, dest)
	}
	if err != nil {
		c.Close()
		return nil, netip.AddrPort{}, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, netip.AddrPort{}, nil
}

// dialChainProxy connects to the next proxy itself. It is the operator's
// choice, so the egress policy does not apply to it.
func (s *Server) dialChainProxy(ctx context.Context, src netip.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: s.opts.ConnectTimeout, Control: s.opts.DialControl}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := d.DialContext(ctx, "tcp", s.chain.addr)
	if err != nil {
		return nil, fmt.Errorf("next proxy %s: %w", s.chain.addr, err)
	}
	return c, nil
}

// chainConnect asks the HTTP proxy at the other end of c for a tunnel to
// dest.
func (s *Server) chainConnect(c net.Conn, dest string) (net.Conn, error) {
	req := "CONNECT " + dest + " HTTP/1.1\r\nHost: " + dest + "\r\n"
	if s.chain.auth != "" {
		req += "Proxy-Authorization: " + s.chain.auth + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return c, fmt.Errorf("next proxy %s: %w", s.chain.addr, err)
	}
	br := bufio.NewReaderSize(io.LimitReader(c, maxChainHead), 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return c, fmt.Errorf("next proxy %s: reading its answer to CONNECT: %w", s.chain.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		return c, &ChainError{Status: resp.StatusCode}
	}
	if n := br.Buffered(); n > 0 {
		// The destination spoke first and its bytes came with the head.
		early, _ := br.Peek(n)
		return &replayConn{Conn: c, early: append([]byte(nil), early...)}, nil
	}
	return c, nil
}

// UpstreamRequestFilter sends absolute-form requests to an HTTP next
// proxy in absolute form, with its credentials.
func (f *httpFront) UpstreamRequestFilter(s *proxy.Session, req *message.Request) error {
	ch := f.srv.chain
	if ch == nil || ch.socks {
		return nil
	}
	req.Path = s.Req.Target
	if ch.auth != "" {
		req.Header.AddString("Proxy-Authorization", ch.auth)
	}
	return nil
}
