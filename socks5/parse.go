package socks5

import (
	"errors"
	"net/netip"
)

// The unexported parse functions behind the Parse functions return, with
// ErrIncomplete, the total length known to be needed so far (always more
// than len(b)), which is what lets the Read functions read exactly one
// message.

// Request is a client's request (RFC 1928 §4), as ServerHandshake and
// ParseRequest return it.
type Request struct {
	// Cmd is Connect, Bind or UDPAssociate.
	Cmd Command
	// Dst is the destination. For UDPAssociate it is the address the
	// client expects to send datagrams from, often all zeros.
	Dst Addr
	// User is the user name the client authenticated with, empty when
	// the server requires no authentication. RFC 1929 lets it hold any
	// bytes: quote it when logging it.
	User string
}

// ParseGreeting parses the client's first message (VER, NMETHODS,
// METHODS) and returns the methods it offers.
func ParseGreeting(b []byte) (methods []Method, n int, err error) {
	m, n, err := parseGreeting(b)
	if err != nil {
		return nil, 0, err
	}
	methods = make([]Method, len(m))
	for i, c := range m {
		methods[i] = Method(c)
	}
	return methods, n, nil
}

func parseGreeting(b []byte) ([]byte, int, error) {
	if len(b) >= 1 && b[0] != Version {
		return nil, 0, ErrVersion
	}
	if len(b) < 2 {
		return nil, 2, ErrIncomplete
	}
	if b[1] == 0 {
		return nil, 0, ErrNoMethods
	}
	n := 2 + int(b[1])
	if len(b) < n {
		return nil, n, ErrIncomplete
	}
	return b[2:n], n, nil
}

// ParseUserPass parses an RFC 1929 username/password request (VER=1,
// ULEN, UNAME, PLEN, PASSWD). Both fields must be 1 to MaxCredentialLen
// bytes; their content is not restricted.
func ParseUserPass(b []byte) (user, pass string, n int, err error) {
	u, p, n, err := parseUserPass(b)
	if err != nil {
		return "", "", 0, err
	}
	return string(u), string(p), n, nil
}

func parseUserPass(b []byte) (user, pass []byte, n int, err error) {
	if len(b) >= 1 && b[0] != UserPassVersion {
		return nil, nil, 0, ErrVersion
	}
	if len(b) < 2 {
		return nil, nil, 2, ErrIncomplete
	}
	ulen := int(b[1])
	if ulen == 0 {
		return nil, nil, 0, ErrCredentialLen
	}
	pl := 2 + ulen // index of PLEN
	if len(b) <= pl {
		return nil, nil, pl + 1, ErrIncomplete
	}
	plen := int(b[pl])
	if plen == 0 {
		return nil, nil, 0, ErrCredentialLen
	}
	n = pl + 1 + plen
	if len(b) < n {
		return nil, nil, n, ErrIncomplete
	}
	return b[2:pl], b[pl+1 : n], n, nil
}

// ParseRequest parses a request (VER, CMD, RSV, ATYP, DST.ADDR,
// DST.PORT). An unknown command is ErrCommandNotSupported and an unknown
// address type ErrAddressTypeNotSupported; ReplyFor gives the reply code
// for each. The returned Request has no User.
func ParseRequest(b []byte) (Request, int, error) {
	r, n, err := parseRequest(b)
	if err != nil {
		return Request{}, 0, err
	}
	return r, n, nil
}

func parseRequest(b []byte) (Request, int, error) {
	if len(b) >= 1 && b[0] != Version {
		return Request{}, 0, ErrVersion
	}
	if len(b) >= 2 && (b[1] < byte(Connect) || b[1] > byte(UDPAssociate)) {
		return Request{}, 0, ErrCommandNotSupported
	}
	if len(b) >= 3 && b[2] != 0 {
		return Request{}, 0, ErrReserved
	}
	a, n, err := parseAddr(b, 3)
	if err != nil {
		return Request{}, n, err
	}
	return Request{Cmd: Command(b[1]), Dst: a}, n, nil
}

// ParseReply parses a server's reply (VER, REP, RSV, ATYP, BND.ADDR,
// BND.PORT). Any reply code is returned as it is; the bound address may be
// a domain name.
func ParseReply(b []byte) (code ReplyCode, bound Addr, n int, err error) {
	code, bound, n, err = parseReply(b)
	if err != nil {
		return 0, Addr{}, 0, err
	}
	return code, bound, n, nil
}

func parseReply(b []byte) (ReplyCode, Addr, int, error) {
	if len(b) >= 1 && b[0] != Version {
		return 0, Addr{}, 0, ErrVersion
	}
	if len(b) >= 3 && b[2] != 0 {
		return 0, Addr{}, 0, ErrReserved
	}
	a, n, err := parseAddr(b, 3)
	if err != nil {
		return 0, Addr{}, n, err
	}
	return ReplyCode(b[1]), a, n, nil
}

// ParseUDPHeader parses the header in front of every datagram of a UDP
// association (RFC 1928 §7: RSV(2), FRAG, ATYP, DST.ADDR, DST.PORT); the
// payload is b[n:]. A fragment (FRAG not zero) is ErrFragmented. Since a
// datagram arrives whole, ErrIncomplete here means it is truncated.
func ParseUDPHeader(b []byte) (dst Addr, n int, err error) {
	dst, n, err = parseUDPHeader(b)
	if err != nil {
		return Addr{}, 0, err
	}
	return dst, n, nil
}

func parseUDPHeader(b []byte) (Addr, int, error) {
	if (len(b) >= 1 && b[0] != 0) || (len(b) >= 2 && b[1] != 0) {
		return Addr{}, 0, ErrReserved
	}
	if len(b) >= 3 && b[2] != 0 {
		return Addr{}, 0, ErrFragmented
	}
	return parseAddr(b, 3)
}

// parseAddr parses ATYP, the address and the port starting at b[off].
func parseAddr(b []byte, off int) (Addr, int, error) {
	if len(b) <= off {
		return Addr{}, off + 1, ErrIncomplete
	}
	switch b[off] {
	case atypIPv4:
		n := off + 1 + 4 + 2
		if len(b) < n {
			return Addr{}, n, ErrIncomplete
		}
		ip := netip.AddrFrom4([4]byte(b[off+1 : off+5]))
		return Addr{IP: ip, Port: be16(b[off+5:])}, n, nil
	case atypIPv6:
		n := off + 1 + 16 + 2
		if len(b) < n {
			return Addr{}, n, ErrIncomplete
		}
		ip := netip.AddrFrom16([16]byte(b[off+1 : off+17])).Unmap()
		return Addr{IP: ip, Port: be16(b[off+17:])}, n, nil
	case atypDomain:
		if len(b) <= off+1 {
			return Addr{}, off + 2, ErrIncomplete
		}
		l := int(b[off+1])
		if l == 0 {
			return Addr{}, 0, ErrDomain
		}
		if !hostBytes(b[off+2 : min(len(b), off+2+l)]) {
			return Addr{}, 0, ErrDomain
		}
		n := off + 2 + l + 2
		if len(b) < n {
			return Addr{}, n, ErrIncomplete
		}
		name := string(b[off+2 : off+2+l])
		ip, err := checkName(name)
		if err != nil {
			return Addr{}, 0, err
		}
		port := be16(b[off+2+l:])
		if ip.IsValid() {
			return Addr{IP: ip, Port: port}, n, nil
		}
		return Addr{Name: name, Port: port}, n, nil
	}
	return Addr{}, 0, ErrAddressTypeNotSupported
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// hostChar reports whether c may appear in a domain name, dots aside.
func hostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// hostBytes reports whether every byte of b may appear in a domain name.
func hostBytes(b []byte) bool {
	for _, c := range b {
		if c != '.' && !hostChar(c) {
			return false
		}
	}
	return true
}

// checkName returns ErrDomain unless name is acceptable as a domain name
// (see ErrDomain). A dotted-quad IPv4 address is acceptable and returned.
func checkName(name string) (netip.Addr, error) {
	if len(name) == 0 || len(name) > MaxDomainLen {
		return netip.Addr{}, ErrDomain
	}
	s := name
	if s[len(s)-1] == '.' { // one trailing dot: a fully qualified name
		s = s[:len(s)-1]
	}
	last := 0 // start of the last label
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if !hostChar(s[i]) {
				return netip.Addr{}, ErrDomain
			}
			continue
		}
		if l := i - last; l == 0 || l > MaxLabelLen {
			return netip.Addr{}, ErrDomain
		}
		if i < len(s) {
			last = i + 1
		}
	}
	if numericLabel(s[last:]) {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
			return ip, nil
		}
		return netip.Addr{}, ErrDomain
	}
	return netip.Addr{}, nil
}

// numericLabel reports whether a label is a decimal number or a 0x
// hexadecimal one: no top-level domain looks like that (RFC 1123 §2.1),
// and resolvers that follow inet_aton read such names as IP addresses.
func numericLabel(l string) bool {
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			c := l[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// AppendGreeting appends a greeting offering methods (1 to MaxMethods).
func AppendGreeting(dst []byte, methods ...Method) ([]byte, error) {
	if len(methods) == 0 {
		return dst, ErrNoMethods
	}
	if len(methods) > MaxMethods {
		return dst, errors.New("socks5: more than 255 methods")
	}
	dst = append(dst, Version, byte(len(methods)))
	for _, m := range methods {
		dst = append(dst, byte(m))
	}
	return dst, nil
}

// AppendUserPass appends an RFC 1929 username/password request. Both
// must be 1 to MaxCredentialLen bytes, or the error is ErrCredentialLen.
func AppendUserPass(dst []byte, user, pass string) ([]byte, error) {
	if len(user) == 0 || len(user) > MaxCredentialLen || len(pass) == 0 || len(pass) > MaxCredentialLen {
		return dst, ErrCredentialLen
	}
	dst = append(dst, UserPassVersion, byte(len(user)))
	dst = append(dst, user...)
	dst = append(dst, byte(len(pass)))
	return append(dst, pass...), nil
}

// AppendRequest appends a request for cmd (Connect, Bind or
// UDPAssociate) to the destination to.
func AppendRequest(dst []byte, cmd Command, to Addr) ([]byte, error) {
	if cmd < Connect || cmd > UDPAssociate {
		return dst, ErrCommandNotSupported
	}
	return appendAddr(dst, []byte{Version, byte(cmd), 0}, to)
}

// AppendReply appends a reply with code and the bound address.
func AppendReply(dst []byte, code ReplyCode, bound Addr) ([]byte, error) {
	return appendAddr(dst, []byte{Version, byte(code), 0}, bound)
}

// AppendUDPHeader appends the header of a datagram to or from to (RFC
// 1928 §7, FRAG zero); the payload follows it.
func AppendUDPHeader(dst []byte, to Addr) ([]byte, error) {
	return appendAddr(dst, []byte{0, 0, 0}, to)
}

// appendAddr appends prefix, then ATYP, the address and the port of a.
func appendAddr(dst, prefix []byte, a Addr) ([]byte, error) {
	if !a.IP.IsValid() {
		if a.Name == "" {
			return dst, ErrAddress
		}
		if _, err := checkName(a.Name); err != nil {
			return dst, err
		}
	}
	dst = append(dst, prefix...)
	switch ip := a.IP.Unmap(); {
	case ip.Is4():
		b := ip.As4()
		dst = append(dst, atypIPv4)
		dst = append(dst, b[:]...)
	case ip.Is6():
		b := ip.As16()
		dst = append(dst, atypIPv6)
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, atypDomain, byte(len(a.Name)))
		dst = append(dst, a.Name...)
	}
	return append(dst, byte(a.Port>>8), byte(a.Port)), nil
}
