package socks5

import (
	"fmt"
	"io"
	"net"
	"net/netip"
)

// ClientHandshake asks the SOCKS5 server at the other end of conn to
// CONNECT to target ("host:port", an IPv6 address in brackets); Weir uses
// it to chain through an upstream SOCKS5 proxy. A host that is a domain
// name is sent as one, for the server to resolve. When user is not empty,
// the greeting offers username/password authentication (RFC 1929) besides
// none, and user and pass (each 1 to MaxCredentialLen bytes) are sent if
// the server picks it.
//
// It returns the address the server bound for the connection, which is the
// zero AddrPort when the server names it by domain name. After it returns
// without error, conn carries the tunnel: it has read no byte past the
// reply. A reply other than Succeeded is a *ReplyError; a server that
// accepts none of the offered methods is ErrNoAcceptableMethod, refused
// credentials ErrAuthFailed.
//
// ClientHandshake sets no deadline: set one on conn before calling it.
func ClientHandshake(conn net.Conn, target, user, pass string) (bound netip.AddrPort, err error) {
	dst, err := ParseHostPort(target)
	if err != nil {
		return netip.AddrPort{}, err
	}
	req, err := AppendRequest(make([]byte, 0, 4+1+MaxDomainLen+2), Connect, dst)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var auth []byte
	greeting := []byte{Version, 1, byte(MethodNoAuth)}
	if user != "" {
		if auth, err = AppendUserPass(nil, user, pass); err != nil {
			return netip.AddrPort{}, err
		}
		greeting = []byte{Version, 2, byte(MethodNoAuth), byte(MethodUserPass)}
	}

	if _, err := conn.Write(greeting); err != nil {
		return netip.AddrPort{}, fmt.Errorf("socks5: writing the greeting: %w", err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(conn, sel[:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("socks5: reading the method selection: %w", err)
	}
	if sel[0] != Version {
		return netip.AddrPort{}, ErrVersion
	}
	switch m := Method(sel[1]); {
	case m == MethodNoAcceptable:
		return netip.AddrPort{}, ErrNoAcceptableMethod
	case m == MethodUserPass && auth != nil:
		if _, err := conn.Write(auth); err != nil {
			return netip.AddrPort{}, fmt.Errorf("socks5: writing the username/password request: %w", err)
		}
		var status [2]byte
		if _, err := io.ReadFull(conn, status[:]); err != nil {
			return netip.AddrPort{}, fmt.Errorf("socks5: reading the authentication status: %w", err)
		}
		if status[0] != UserPassVersion {
			return netip.AddrPort{}, ErrVersion
		}
		if status[1] != 0 {
			return netip.AddrPort{}, ErrAuthFailed
		}
	case m != MethodNoAuth:
		return netip.AddrPort{}, fmt.Errorf("%w: %v", ErrUnexpectedMethod, m)
	}

	if _, err := conn.Write(req); err != nil {
		return netip.AddrPort{}, fmt.Errorf("socks5: writing the request: %w", err)
	}
	code, addr, err := ReadReply(conn)
	if err != nil {
		if isProtocolError(err) {
			return netip.AddrPort{}, err
		}
		return netip.AddrPort{}, fmt.Errorf("socks5: reading the reply: %w", err)
	}
	if code != Succeeded {
		return netip.AddrPort{}, &ReplyError{Code: code}
	}
	ap, _ := addr.AddrPort()
	return ap, nil
}
