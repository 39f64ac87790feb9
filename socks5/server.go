package socks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// ServerConfig is what ServerHandshake accepts. The zero value (or a nil
// *ServerConfig) requires no authentication, allows only CONNECT and uses
// DefaultHandshakeTimeout.
type ServerConfig struct {
	// Authenticate checks a user name and password. When it is nil, no
	// authentication is required and only MethodNoAuth is accepted; when
	// it is set, only MethodUserPass is accepted. It should compare in
	// constant time. It runs on the connection's goroutine, within the
	// handshake deadline.
	Authenticate func(user, pass string) bool

	// HandshakeTimeout bounds the whole handshake, from the greeting to
	// the end of the request. Zero means DefaultHandshakeTimeout; a
	// negative value sets no deadline.
	HandshakeTimeout time.Duration

	// AllowBind lets clients use the BIND command. When false, BIND is
	// answered with CommandNotSupported.
	AllowBind bool

	// AllowUDPAssociate lets clients use the UDP ASSOCIATE command. When
	// false, it is answered with CommandNotSupported.
	AllowUDPAssociate bool
}

// ServerHandshake runs the server side of a SOCKS5 handshake on conn: it
// reads the greeting, selects the authentication method, authenticates
// the client when cfg.Authenticate is set, and reads the request. It reads
// no byte past the request.
//
// On success it returns the request without answering it: the caller
// applies its policy, carries the command out and answers with WriteReply
// (Succeeded and the bound address, or the failure's code). The handshake
// deadline is cleared before it returns.
//
// On failure it has already sent whatever answer the protocol calls for,
// and the caller only closes conn:
//   - a greeting that is not SOCKS5 (ErrVersion): nothing is sent;
//   - no acceptable method (ErrNoAcceptableMethod, ErrNoMethods): {5,0xFF};
//   - refused or malformed credentials (ErrAuthFailed, ErrCredentialLen):
//     {1,1};
//   - a malformed or refused request: a reply with ReplyFor(err), such as
//     CommandNotSupported for a command that is not enabled
//     (ErrCommandNotSupported) or AddressTypeNotSupported
//     (ErrAddressTypeNotSupported).
//
// Read and write errors (including the deadline) are returned wrapped,
// with nothing sent.
func ServerHandshake(conn net.Conn, cfg *ServerConfig) (*Request, error) {
	if cfg == nil {
		cfg = &ServerConfig{}
	}
	timeout := cfg.HandshakeTimeout
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	if timeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return nil, fmt.Errorf("socks5: setting the handshake deadline: %w", err)
		}
	}

	methods, err := ReadGreeting(conn)
	if err != nil {
		if errors.Is(err, ErrNoMethods) {
			return nil, answer(conn, []byte{Version, byte(MethodNoAcceptable)}, err)
		}
		return nil, readErr("greeting", err)
	}
	want := MethodNoAuth
	if cfg.Authenticate != nil {
		want = MethodUserPass
	}
	offered := false
	for _, m := range methods {
		if m == want {
			offered = true
			break
		}
	}
	if !offered {
		return nil, answer(conn, []byte{Version, byte(MethodNoAcceptable)}, ErrNoAcceptableMethod)
	}
	if _, err := conn.Write([]byte{Version, byte(want)}); err != nil {
		return nil, fmt.Errorf("socks5: writing the method selection: %w", err)
	}

	var user string
	if want == MethodUserPass {
		u, p, err := ReadUserPass(conn)
		if err != nil {
			if isProtocolError(err) {
				return nil, answer(conn, []byte{UserPassVersion, 1}, err)
			}
			return nil, readErr("username/password request", err)
		}
		if !cfg.Authenticate(u, p) {
			return nil, answer(conn, []byte{UserPassVersion, 1}, ErrAuthFailed)
		}
		if _, err := conn.Write([]byte{UserPassVersion, 0}); err != nil {
			return nil, fmt.Errorf("socks5: writing the authentication status: %w", err)
		}
		user = u
	}

	req, err := ReadRequest(conn)
	if err != nil {
		if isProtocolError(err) {
			return nil, refuse(conn, err)
		}
		return nil, readErr("request", err)
	}
	if (req.Cmd == Bind && !cfg.AllowBind) || (req.Cmd == UDPAssociate && !cfg.AllowUDPAssociate) {
		return nil, refuse(conn, fmt.Errorf("%w: %v is disabled", ErrCommandNotSupported, req.Cmd))
	}
	req.User = user
	if timeout > 0 {
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("socks5: clearing the handshake deadline: %w", err)
		}
	}
	return &req, nil
}

// answer writes msg and returns err, or the write error if that failed.
func answer(w io.Writer, msg []byte, err error) error {
	if _, werr := w.Write(msg); werr != nil {
		return fmt.Errorf("%w (and writing the answer: %v)", err, werr)
	}
	return err
}

// refuse answers a request with ReplyFor(err) and returns err.
func refuse(w io.Writer, err error) error {
	if werr := WriteReply(w, ReplyFor(err), netip.AddrPort{}); werr != nil {
		return fmt.Errorf("%w (and writing the reply: %v)", err, werr)
	}
	return err
}

func readErr(what string, err error) error {
	if isProtocolError(err) {
		return err
	}
	return fmt.Errorf("socks5: reading the %s: %w", what, err)
}

// isProtocolError reports whether err is a parser's verdict on the bytes,
// as opposed to a failure to read them.
func isProtocolError(err error) bool {
	for _, e := range []error{ErrVersion, ErrNoMethods, ErrCredentialLen, ErrReserved,
		ErrCommandNotSupported, ErrAddressTypeNotSupported, ErrDomain, ErrFragmented} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// WriteReply writes a reply (RFC 1928 §6) with code and the address the
// server bound: for CONNECT, the local address of the connection to the
// destination; for UDP ASSOCIATE, the address clients send datagrams to;
// for BIND, the listening address in the first reply and the connecting
// peer's address in the second. A zero bound is sent as 0.0.0.0:0, which
// is what failure replies carry. An IPv4-mapped IPv6 address is sent as
// IPv4. It makes one Write call.
func WriteReply(w io.Writer, code ReplyCode, bound netip.AddrPort) error {
	a := Addr{IP: bound.Addr().Unmap().WithZone(""), Port: bound.Port()}
	if !a.IP.IsValid() {
		a.IP = netip.IPv4Unspecified()
	}
	var buf [4 + 16 + 2]byte
	msg, err := AppendReply(buf[:0], code, a)
	if err != nil {
		return err
	}
	_, err = w.Write(msg)
	return err
}

// ReplyFor returns the reply code for an error from handling a request:
//   - nil: Succeeded;
//   - ErrNotAllowed (a caller's policy refusal), EACCES, EPERM: NotAllowed;
//   - ErrCommandNotSupported: CommandNotSupported;
//   - ErrAddressTypeNotSupported: AddressTypeNotSupported;
//   - a failed name resolution (*net.DNSError): HostUnreachable;
//   - ECONNREFUSED: ConnectionRefused;
//   - ENETUNREACH: NetworkUnreachable;
//   - EHOSTUNREACH, EHOSTDOWN: HostUnreachable;
//   - a timeout (ETIMEDOUT, a deadline, context.DeadlineExceeded):
//     TTLExpired, the code RFC 1928 has for a destination that did not
//     answer in time;
//   - anything else, including a malformed request: GeneralFailure.
func ReplyFor(err error) ReplyCode {
	if err == nil {
		return Succeeded
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrNotAllowed), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return NotAllowed
	case errors.Is(err, ErrCommandNotSupported):
		return CommandNotSupported
	case errors.Is(err, ErrAddressTypeNotSupported):
		return AddressTypeNotSupported
	case errors.As(err, &dnsErr):
		return HostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return NetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return HostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return TTLExpired
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TTLExpired
	}
	return GeneralFailure
}
