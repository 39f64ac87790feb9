package tlsfp

import (
	"encoding/binary"
	"errors"
	"slices"
)

// Bounds on what the parser reads.
const (
	// MaxHandshakeSize is the largest ClientHello body (the handshake
	// message without its 4-byte header) the parser accepts. Browsers send
	// about 2 KiB, post-quantum key shares included; a larger hello is
	// legal TLS but is not fingerprinted (ErrTooLarge).
	MaxHandshakeSize = 16 << 10

	// MaxRecordSize is the largest TLS record payload the parser accepts:
	// 2^14 bytes, the limit for plaintext records (RFC 8446 5.1).
	MaxRecordSize = 1 << 14

	// RecordHeaderSize is the size of a TLS record header: content type,
	// version and length.
	RecordHeaderSize = 5

	// HandshakeHeaderSize is the size of a handshake message header:
	// message type and 24-bit length.
	HandshakeHeaderSize = 4
)

// TLS wire constants the parser needs.
const (
	recordTypeHandshake    = 22
	handshakeClientHello   = 1
	maxSessionIDLen        = 32
	randomLen              = 32
	extServerName          = 0x0000
	extSupportedGroups     = 0x000a
	extECPointFormats      = 0x000b
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b
	sniHostName            = 0
)

// Errors returned by the parsers. Malformed-input errors wrap ErrMalformed
// and name the field at fault; test them with errors.Is.
var (
	// ErrIncomplete means the input is a valid prefix of a ClientHello and
	// more bytes are needed. It is the only error after which feeding more
	// bytes can succeed.
	ErrIncomplete = errors.New("tlsfp: incomplete ClientHello")

	// ErrNotTLS means the stream does not start with a TLS handshake
	// record (for example plain HTTP or SSL 2.0), or that the first
	// handshake message is not a ClientHello.
	ErrNotTLS = errors.New("tlsfp: not a TLS ClientHello")

	// ErrTooLarge means the ClientHello is larger than MaxHandshakeSize.
	ErrTooLarge = errors.New("tlsfp: ClientHello too large")

	// ErrMalformed means a length or field of the ClientHello or of its
	// records is invalid.
	ErrMalformed = errors.New("tlsfp: malformed ClientHello")
)

// malformed is a constant error naming the malformed part. Converting a
// constant to it allocates nothing.
type malformed string

func (e malformed) Error() string        { return "tlsfp: malformed ClientHello: " + string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

// ClientHello holds the fields of a TLS ClientHello that fingerprints and
// routing use. Lists are in the order the client sent them, GREASE values
// included. A ClientHello returned by this package is never modified
// afterwards and is safe to share between goroutines.
type ClientHello struct {
	// Version is legacy_version, the version field of the hello itself
	// (0x0303 for TLS 1.2 and 1.3 clients).
	Version uint16

	// CipherSuites are the offered cipher suites, signalling values such
	// as TLS_EMPTY_RENEGOTIATION_INFO_SCSV (0x00ff) included.
	CipherSuites []uint16

	// Extensions are the extension types, in order.
	Extensions []uint16

	// ServerName is the host_name of the server_name extension
	// (SNI), as sent: it is not checked to be a valid DNS name. It is
	// empty if the extension is absent; HasExtension(0) tells an absent
	// extension from one without a host_name.
	ServerName string

	// ALPN are the protocols of the application_layer_protocol_negotiation
	// extension, in the client's order of preference.
	ALPN []string

	// SupportedVersions is the supported_versions extension (TLS 1.3).
	SupportedVersions []uint16

	// SupportedGroups is the supported_groups extension (named
	// "elliptic curves" in JA3).
	SupportedGroups []uint16

	// ECPointFormats is the ec_point_formats extension.
	ECPointFormats []uint8

	// SignatureAlgorithms is the signature_algorithms extension.
	SignatureAlgorithms []uint16
}

// HasExtension reports whether the client sent the extension typ.
func (h *ClientHello) HasExtension(typ uint16) bool {
	return slices.Contains(h.Extensions, typ)
}

// IsGREASE reports whether v is one of the sixteen GREASE values RFC 8701
// reserves for cipher suites, extensions, groups, signature algorithms and
// versions: 0x0a0a, 0x1a1a, ..., 0xfafa.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// ParseHandshake parses one complete ClientHello handshake message: the
// 4-byte handshake header (type 1 and a 24-bit length) followed by exactly
// that many bytes, with no record layer around it. This is the form QUIC
// carries in CRYPTO frames; a QUIC front end reassembles the CRYPTO stream
// and calls ParseHandshake, then fingerprints with JA4(TransportQUIC).
//
// It returns ErrIncomplete if msg is shorter than the header declares,
// ErrNotTLS if the message is not a ClientHello, ErrTooLarge if the body
// exceeds MaxHandshakeSize, and an error wrapping ErrMalformed if msg is
// longer than declared or any field is invalid. The result does not refer
// to msg.
func ParseHandshake(msg []byte) (*ClientHello, error) {
	if len(msg) == 0 {
		return nil, ErrIncomplete
	}
	if msg[0] != handshakeClientHello {
		return nil, ErrNotTLS
	}
	if len(msg) < HandshakeHeaderSize {
		return nil, ErrIncomplete
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if n > MaxHandshakeSize {
		return nil, ErrTooLarge
	}
	body := msg[HandshakeHeaderSize:]
	if len(body) < n {
		return nil, ErrIncomplete
	}
	if len(body) > n {
		return nil, malformed("bytes after the handshake message")
	}
	return parseBody(body)
}

// reader walks a byte slice; every read checks the remaining length.
type reader []byte

func (r *reader) u8() (uint8, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *reader) u16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return v, true
}

func (r *reader) bytes(n int) (reader, bool) {
	if len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

// vec8 and vec16 read a vector with a 1- or 2-byte length prefix.
func (r *reader) vec8() (reader, bool) {
	n, ok := r.u8()
	if !ok {
		return nil, false
	}
	return r.bytes(int(n))
}

func (r *reader) vec16() (reader, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	return r.bytes(int(n))
}

// u16List decodes a non-empty list of 16-bit values whose byte length must
// be even.
func u16List(b reader) ([]uint16, bool) {
	if len(b) == 0 || len(b)%2 != 0 {
		return nil, false
	}
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out, true
}

// parseBody parses a ClientHello body (RFC 8446 4.1.2; RFC 5246 7.4.1.2).
func parseBody(body []byte) (*ClientHello, error) {
	r := reader(body)
	h := new(ClientHello)
	var ok bool
	if h.Version, ok = r.u16(); !ok {
		return nil, malformed("version")
	}
	if _, ok = r.bytes(randomLen); !ok {
		return nil, malformed("random")
	}
	sid, ok := r.vec8()
	if !ok || len(sid) > maxSessionIDLen {
		return nil, malformed("session id")
	}
	cs, ok := r.vec16()
	if !ok {
		return nil, malformed("cipher suites")
	}
	if h.CipherSuites, ok = u16List(cs); !ok {
		return nil, malformed("cipher suites")
	}
	comp, ok := r.vec8()
	if !ok || len(comp) == 0 {
		return nil, malformed("compression methods")
	}
	if len(r) == 0 {
		// A TLS 1.2 or older hello may end here, without extensions.
		return h, nil
	}
	exts, ok := r.vec16()
	if !ok || len(r) != 0 {
		return nil, malformed("extensions length")
	}
	if err := h.parseExtensions(exts); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *ClientHello) parseExtensions(exts reader) error {
	// Each extension takes at least 4 bytes: size the list once.
	h.Extensions = make([]uint16, 0, len(exts)/4)
	for len(exts) > 0 {
		typ, ok := exts.u16()
		if !ok {
			return malformed("extension header")
		}
		data, ok := exts.vec16()
		if !ok {
			return malformed("extension length")
		}
		h.Extensions = append(h.Extensions, typ)
		if err := h.parseExtension(typ, data); err != nil {
			return err
		}
	}
	// RFC 8446 4.2: no extension type may appear twice. Hellos have
	// about twenty extensions; sort a copy on the stack.
	var buf [48]uint16
	sorted := append(buf[:0], h.Extensions...)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return malformed("duplicate extension")
		}
	}
	return nil
}

// parseExtension decodes the extensions the fingerprints and routing need;
// the rest are recorded by type only.
func (h *ClientHello) parseExtension(typ uint16, data reader) error {
	switch typ {
	case extServerName: // RFC 6066 3
		list, ok := data.vec16()
		if !ok || len(data) != 0 || len(list) == 0 {
			return malformed("server_name")
		}
		for len(list) > 0 {
			nameType, ok := list.u8()
			if !ok {
				return malformed("server_name")
			}
			name, ok := list.vec16()
			if !ok || len(name) == 0 {
				return malformed("server_name")
			}
			if nameType == sniHostName {
				if h.ServerName != "" {
					return malformed("server_name: two host names")
				}
				h.ServerName = string(name)
			}
		}
	case extALPN: // RFC 7301 3.1
		list, ok := data.vec16()
		if !ok || len(data) != 0 || len(list) == 0 {
			return malformed("alpn")
		}
		for len(list) > 0 {
			proto, ok := list.vec8()
			if !ok || len(proto) == 0 {
				return malformed("alpn")
			}
			h.ALPN = append(h.ALPN, string(proto))
		}
	case extSupportedVersions: // RFC 8446 4.2.1
		list, ok := data.vec8()
		if !ok || len(data) != 0 {
			return malformed("supported_versions")
		}
		if h.SupportedVersions, ok = u16List(list); !ok {
			return malformed("supported_versions")
		}
	case extSupportedGroups: // RFC 8446 4.2.7
		list, ok := data.vec16()
		if !ok || len(data) != 0 {
			return malformed("supported_groups")
		}
		if h.SupportedGroups, ok = u16List(list); !ok {
			return malformed("supported_groups")
		}
	case extECPointFormats: // RFC 8422 5.1.2
		list, ok := data.vec8()
		if !ok || len(data) != 0 || len(list) == 0 {
			return malformed("ec_point_formats")
		}
		h.ECPointFormats = slices.Clone([]byte(list))
	case extSignatureAlgorithms: // RFC 8446 4.2.3
		list, ok := data.vec16()
		if !ok || len(data) != 0 {
			return malformed("signature_algorithms")
		}
		if h.SignatureAlgorithms, ok = u16List(list); !ok {
			return malformed("signature_algorithms")
		}
	}
	return nil
}
