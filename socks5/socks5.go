// Package socks5 is Weir's SOCKS5 codec and the handshakes built on it: the
// server side of RFC 1928 (with RFC 1929 username/password authentication)
// that Weir's forward proxy answers clients with, a client side for chaining
// through an upstream SOCKS5 proxy, and the UDP ASSOCIATE relay.
//
// The package is strict. A message that does not start with the SOCKS5
// version byte (a SOCKS4 client, an HTTP request, noise) is ErrVersion.
// Domain names are held to what a hostname may contain, so that a hostile
// name never reaches a log line or a DNS query.
//
// # Serving
//
// A server uses it like this:
//
//	req, err := socks5.ServerHandshake(conn, &socks5.ServerConfig{Authenticate: check})
//	if err != nil {
//		conn.Close() // any failure reply has been sent already
//		return
//	}
//	up, err := dial(req.Dst) // policy, resolution and connect are the caller's
//	if err != nil {
//		socks5.WriteReply(conn, socks5.ReplyFor(err), netip.AddrPort{})
//		conn.Close()
//		return
//	}
//	socks5.WriteReply(conn, socks5.Succeeded, localAddrPort(up))
//	// copy bytes both ways
//
// A UDP ASSOCIATE request is carried out by a UDPRelay; ClientHandshake is
// the other side of the handshake, for reaching a destination through an
// upstream SOCKS5 proxy.
//
// # Parsing
//
// Each Parse function (ParseGreeting, ParseUserPass, ParseRequest,
// ParseReply, ParseUDPHeader) reads one message from the start of a byte
// slice and returns it with n, the number of bytes it took; bytes after
// the message are left alone. Input may be split at any byte: while the
// slice holds a correct beginning of the message but not all of it, the
// error is ErrIncomplete, and the caller reads more and parses the longer
// slice again. A malformed message is reported as soon as the byte that
// breaks it is in the slice. On any error n is 0. Parsers never modify the
// slice and never keep it: what they return is copied.
//
// # Reading
//
// Each Read function (ReadGreeting, ReadUserPass, ReadRequest, ReadReply)
// reads one message from an io.Reader and never reads past its last byte,
// so whatever follows it on the connection (a pipelined request, the first
// bytes of the tunnel) stays there for the caller. A malformed message is
// reported as soon as its breaking byte arrives. An end of stream before
// the first byte is io.EOF, within the message io.ErrUnexpectedEOF.
//
// # Building
//
// Each Append function appends one message to a slice and returns the
// extended slice, or the slice unchanged and an error when the message
// cannot be encoded.
package socks5

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Version is the first byte of every SOCKS5 message except the RFC 1929
// username/password messages, which start with UserPassVersion.
const Version = 5

// UserPassVersion is the first byte of the RFC 1929 username/password
// request and of the server's answer to it.
const UserPassVersion = 1

// Limits and defaults. The lengths follow from the wire format; the
// timeouts and MaxUDPPeers bound what Weir keeps per connection or
// association.
const (
	// MaxDomainLen is the longest domain name a message may carry (its
	// length is one byte on the wire).
	MaxDomainLen = 255

	// MaxLabelLen is the longest label (the part between two dots) of a
	// domain name, as in DNS.
	MaxLabelLen = 63

	// MaxCredentialLen is the longest user name or password of RFC 1929
	// (one length byte each). Empty ones are rejected.
	MaxCredentialLen = 255

	// MaxMethods is the most authentication methods a greeting can list.
	MaxMethods = 255

	// MaxMessageLen is the longest handshake message of either side: an
	// RFC 1929 request with a 255-byte user name and a 255-byte password.
	MaxMessageLen = 3 + 2*MaxCredentialLen

	// MaxUDPHeaderLen is the longest UDP request header (RFC 1928 §7), the
	// one carrying a 255-byte domain name.
	MaxUDPHeaderLen = 4 + 1 + MaxDomainLen + 2

	// MaxDatagramLen bounds one datagram the UDP relay reads, header
	// included. No UDP payload is larger.
	MaxDatagramLen = 64<<10 - 1

	// DefaultHandshakeTimeout is how long ServerHandshake gives a client to
	// finish the greeting, the authentication and the request, measured
	// from the start of the handshake.
	DefaultHandshakeTimeout = 10 * time.Second

	// DefaultUDPIdleTimeout is how long a UDP association may relay no
	// datagram in either direction before UDPRelay ends it.
	DefaultUDPIdleTimeout = 2 * time.Minute

	// MaxUDPPeers bounds how many destinations one UDP association
	// remembers. Replies are relayed only from remembered destinations;
	// past the bound, the one used longest ago is forgotten.
	MaxUDPPeers = 1024
)

// Method is an authentication method number (RFC 1928 §3).
type Method byte

// Authentication methods. Weir's server accepts MethodNoAuth or
// MethodUserPass, never both for one configuration.
const (
	MethodNoAuth       Method = 0x00 // no authentication
	MethodGSSAPI       Method = 0x01 // GSS-API (RFC 1961); not supported by Weir
	MethodUserPass     Method = 0x02 // username/password (RFC 1929)
	MethodNoAcceptable Method = 0xFF // the server's answer when no offered method is acceptable
)

// String names the method.
func (m Method) String() string {
	switch m {
	case MethodNoAuth:
		return "no authentication"
	case MethodGSSAPI:
		return "GSS-API"
	case MethodUserPass:
		return "username/password"
	case MethodNoAcceptable:
		return "no acceptable methods"
	}
	return "method 0x" + hex2(byte(m))
}

// Command is the CMD field of a request.
type Command byte

// The three commands of RFC 1928 §4.
const (
	Connect      Command = 1 // open a TCP connection to the destination
	Bind         Command = 2 // accept one TCP connection from the destination
	UDPAssociate Command = 3 // relay UDP datagrams
)

// String names the command as RFC 1928 spells it.
func (c Command) String() string {
	switch c {
	case Connect:
		return "CONNECT"
	case Bind:
		return "BIND"
	case UDPAssociate:
		return "UDP ASSOCIATE"
	}
	return "command 0x" + hex2(byte(c))
}

// Address types (ATYP) of RFC 1928 §5.
const (
	atypIPv4   = 1
	atypDomain = 3
	atypIPv6   = 4
)

// ReplyCode is the REP field of a server's reply (RFC 1928 §6).
type ReplyCode byte

// Reply codes.
const (
	// Succeeded: the command was carried out.
	Succeeded ReplyCode = 0
	// GeneralFailure: a failure no other code describes, including a
	// malformed request.
	GeneralFailure ReplyCode = 1
	// NotAllowed: the proxy's rules refuse this client or destination.
	NotAllowed ReplyCode = 2
	// NetworkUnreachable: no route to the destination's network.
	NetworkUnreachable ReplyCode = 3
	// HostUnreachable: the destination could not be reached, or its name
	// could not be resolved.
	HostUnreachable ReplyCode = 4
	// ConnectionRefused: the destination refused the connection.
	ConnectionRefused ReplyCode = 5
	// TTLExpired: the destination never answered (the connect timed out).
	TTLExpired ReplyCode = 6
	// CommandNotSupported: the command is unknown or not enabled.
	CommandNotSupported ReplyCode = 7
	// AddressTypeNotSupported: the address type (ATYP) is unknown.
	AddressTypeNotSupported ReplyCode = 8
)

// String describes the code in the words of RFC 1928.
func (c ReplyCode) String() string {
	switch c {
	case Succeeded:
		return "succeeded"
	case GeneralFailure:
		return "general SOCKS server failure"
	case NotAllowed:
		return "connection not allowed by ruleset"
	case NetworkUnreachable:
		return "network unreachable"
	case HostUnreachable:
		return "host unreachable"
	case ConnectionRefused:
		return "connection refused"
	case TTLExpired:
		return "TTL expired"
	case CommandNotSupported:
		return "command not supported"
	case AddressTypeNotSupported:
		return "address type not supported"
	}
	return "reply code 0x" + hex2(byte(c))
}

// Errors. Parsers return them unwrapped; the handshakes and the relay may
// wrap them with context, so compare with errors.Is.
var (
	// ErrIncomplete means the bytes given are a correct beginning of the
	// message but not all of it: read more and parse again. For a UDP
	// datagram, which arrives whole, it means the datagram is truncated.
	ErrIncomplete = errors.New("socks5: incomplete message")

	// ErrVersion means the version byte is wrong: the peer does not speak
	// SOCKS5 (a SOCKS4 client, an HTTP request, noise). Close the
	// connection without answering.
	ErrVersion = errors.New("socks5: wrong protocol version")

	// ErrNoMethods means a greeting lists no authentication method.
	ErrNoMethods = errors.New("socks5: greeting lists no methods")

	// ErrNoAcceptableMethod means the client offered no authentication
	// method the server accepts (or, for ClientHandshake, that the server
	// accepted none of ours).
	ErrNoAcceptableMethod = errors.New("socks5: no acceptable authentication method")

	// ErrUnexpectedMethod means a server chose an authentication method
	// the client did not offer.
	ErrUnexpectedMethod = errors.New("socks5: server chose a method that was not offered")

	// ErrCredentialLen means a user name or password is empty or longer
	// than MaxCredentialLen.
	ErrCredentialLen = errors.New("socks5: empty or too long user name or password")

	// ErrAuthFailed means the user name and password were refused.
	ErrAuthFailed = errors.New("socks5: authentication failed")

	// ErrReserved means a reserved field (RSV) is not zero.
	ErrReserved = errors.New("socks5: reserved field is not zero")

	// ErrCommandNotSupported means the command is unknown or not enabled;
	// the reply is CommandNotSupported.
	ErrCommandNotSupported = errors.New("socks5: command not supported")

	// ErrAddressTypeNotSupported means the address type (ATYP) is unknown;
	// the reply is AddressTypeNotSupported.
	ErrAddressTypeNotSupported = errors.New("socks5: address type not supported")

	// ErrDomain means a domain name is empty, too long, or holds something
	// a hostname may not: anything but ASCII letters, digits, '-', '_' and
	// dots between non-empty labels of at most MaxLabelLen bytes, or a
	// numeric last label (such as "127.1" or "0x7f000001", which some
	// resolvers read as an IP address). A dotted-quad IPv4 address is not
	// an error: it is returned as an address.
	ErrDomain = errors.New("socks5: invalid domain name")

	// ErrAddress means an Addr to encode holds neither an IP address nor a
	// domain name.
	ErrAddress = errors.New("socks5: no address")

	// ErrFragmented means a UDP datagram has a non-zero FRAG field. Weir
	// does not reassemble fragments; such datagrams are dropped.
	ErrFragmented = errors.New("socks5: fragmented UDP datagram")

	// ErrNotAllowed is for callers: a dial or resolve function that
	// refuses a destination by policy returns it (possibly wrapped), and
	// ReplyFor turns it into NotAllowed.
	ErrNotAllowed = errors.New("socks5: not allowed by ruleset")

	// ErrNotClient means a datagram reached the client side of a UDP
	// association from an address other than the client's.
	ErrNotClient = errors.New("socks5: datagram not from the associated client")

	// ErrUnknownPeer means a datagram reached the outbound side of a UDP
	// association from an address the client never sent to.
	ErrUnknownPeer = errors.New("socks5: datagram from a destination the client did not send to")

	// ErrRelayIdle means a UDP association ended because no datagram was
	// relayed for its idle timeout.
	ErrRelayIdle = errors.New("socks5: UDP association idle")
)

// ReplyError is a reply other than Succeeded, as ClientHandshake reports it.
type ReplyError struct {
	Code ReplyCode
}

// Error names the reply code.
func (e *ReplyError) Error() string {
	return "socks5: server replied " + e.Code.String()
}

// Addr is a SOCKS5 address: an IP address or a domain name, and a port.
// Exactly one of IP and Name is set in an Addr a parser returns.
type Addr struct {
	// IP is the address when the message carried an IP address (or a
	// domain name that is a dotted-quad IPv4 address). IPv4-mapped IPv6
	// addresses are returned as IPv4, so that rules written for IPv4 also
	// cover them.
	IP netip.Addr
	// Name is the domain name when the message carried one. It holds only
	// ASCII letters, digits, '-', '_' and '.' (see ErrDomain). Rules that
	// restrict destinations by IP address must be applied after
	// resolving it.
	Name string
	// Port is the port, 0 to 65535.
	Port uint16
}

// AddrFromAddrPort returns the Addr for an IP address and port, with an
// IPv4-mapped IPv6 address turned into IPv4 and any zone dropped.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap().WithZone(""), Port: ap.Port()}
}

// ParseHostPort parses "host:port" (IPv6 addresses in brackets) into an
// Addr. The host must be an IP address without a zone or a domain name
// that passes the same checks as one received on the wire.
func ParseHostPort(s string) (Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, errors.New("socks5: invalid port in " + strconv.Quote(s))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Addr{}, errors.New("socks5: address with a zone in " + strconv.Quote(s))
		}
		return Addr{IP: ip.Unmap(), Port: uint16(p)}, nil
	}
	ip, err := checkName(host)
	if err != nil {
		return Addr{}, err
	}
	if ip.IsValid() {
		return Addr{IP: ip, Port: uint16(p)}, nil
	}
	return Addr{Name: host, Port: uint16(p)}, nil
}

// IsName reports whether a holds a domain name rather than an IP address.
func (a Addr) IsName() bool { return !a.IP.IsValid() && a.Name != "" }

// AddrPort returns the IP address and port, and false when a holds a
// domain name.
func (a Addr) AddrPort() (netip.AddrPort, bool) {
	if !a.IP.IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.IP, a.Port), true
}

// String returns "host:port", with an IPv6 address in brackets. Domain
// names from a parser are safe to log as they are.
func (a Addr) String() string {
	host := a.Name
	if a.IP.IsValid() {
		host = a.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}
