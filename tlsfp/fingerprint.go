package tlsfp

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
)

// Transports for JA4, the first character of the fingerprint.
const (
	TransportTCP  byte = 't' // TLS over TCP
	TransportQUIC byte = 'q' // QUIC (HTTP/3), hello from ParseHandshake
	TransportDTLS byte = 'd' // DTLS
)

// ja4Empty replaces the hash of a list with no values, so that an empty
// list is visible as such in the fingerprint.
const ja4Empty = "000000000000"

// ja4HashLen is how many hex characters of a SHA-256 JA4 keeps.
const ja4HashLen = 12

// ja4MaxCount caps the two-digit cipher and extension counts.
const ja4MaxCount = 99

// JA3 returns the JA3 string of the hello:
// "SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats",
// each field in decimal, the values of a list joined by "-", in the order
// the client sent them and without GREASE values. SSLVersion is the
// hello's legacy version (771 for TLS 1.2 and 1.3 clients). An absent
// list is an empty field, as in "771,4865,0-10,,".
func (h *ClientHello) JA3() string {
	b := make([]byte, 0, 16+6*(len(h.CipherSuites)+len(h.Extensions)+len(h.SupportedGroups))+4*len(h.ECPointFormats))
	b = strconv.AppendUint(b, uint64(h.Version), 10)
	b = append(b, ',')
	b = appendDecimals(b, h.CipherSuites)
	b = append(b, ',')
	b = appendDecimals(b, h.Extensions)
	b = append(b, ',')
	b = appendDecimals(b, h.SupportedGroups)
	b = append(b, ',')
	for i, f := range h.ECPointFormats {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, uint64(f), 10)
	}
	return string(b)
}

// JA3Hash returns the JA3 fingerprint: the MD5 of JA3, as 32 lowercase hex
// characters.
func (h *ClientHello) JA3Hash() string {
	sum := md5.Sum([]byte(h.JA3()))
	return hex.EncodeToString(sum[:])
}

func appendDecimals(b []byte, vs []uint16) []byte {
	first := true
	for _, v := range vs {
		if IsGREASE(v) {
			continue
		}
		if !first {
			b = append(b, '-')
		}
		first = false
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return b
}

// JA4 returns the JA4 fingerprint of the hello, as the FoxIO JA4
// specification defines it: "a_b_c", for example
// "t13d1516h2_8daaf6152771_e5627efa2ab1", where
//
//   - a is the transport (TransportTCP, TransportQUIC or TransportDTLS),
//     the TLS version (the highest supported_versions value if the
//     extension is present, else the legacy version: "13", "12", "11",
//     "10", "s3", "s2", "d1", "d2", "d3", or "00" when unknown), "d" if the
//     server_name extension is present and "i" if not, the number of
//     cipher suites and the number of extensions (two digits each, capped
//     at 99; SNI and ALPN counted), and the first and last characters of
//     the first ALPN protocol ("00" without one; when either is not an
//     ASCII letter or digit, the first and last hex digits of the
//     protocol's bytes instead);
//   - b is the first 12 hex characters of the SHA-256 of the cipher suites
//     as 4-digit lowercase hex, sorted, joined by ",";
//   - c is the same hash of the extension types sorted the same way,
//     without server_name (0000) and ALPN (0010), then "_" and the
//     signature algorithms in the client's order (no "_" when there are
//     none).
//
// GREASE values are left out everywhere. A list with no values hashes to
// "000000000000". JA4 returns "" if transport is none of the three.
func (h *ClientHello) JA4(transport byte) string {
	return h.ja4(transport, true, true)
}

// JA4R returns the raw form of JA4 (JA4_r), for debugging: the "a" part,
// then the cipher list and the extension-and-signature string exactly as
// JA4 hashes them, unhashed.
func (h *ClientHello) JA4R(transport byte) string {
	return h.ja4(transport, true, false)
}

// JA4O returns JA4 with the lists in the client's original order instead
// of sorted (JA4_o). Its "c" part keeps the server_name and ALPN
// extensions. Clients that shuffle their extensions, as current browsers
// do, get a different JA4O for each connection.
func (h *ClientHello) JA4O(transport byte) string {
	return h.ja4(transport, false, true)
}

// JA4RO returns JA4O unhashed (JA4_ro), for debugging.
func (h *ClientHello) JA4RO(transport byte) string {
	return h.ja4(transport, false, false)
}

func (h *ClientHello) ja4(transport byte, sorted, hashed bool) string {
	switch transport {
	case TransportTCP, TransportQUIC, TransportDTLS:
	default:
		return ""
	}
	ciphers := withoutGREASE(h.CipherSuites, false)
	exts := withoutGREASE(h.Extensions, false)
	out := make([]byte, 0, 64)
	out = append(out, transport)
	out = append(out, versionCode(h.ja4Version())...)
	if h.HasExtension(extServerName) {
		out = append(out, 'd')
	} else {
		out = append(out, 'i')
	}
	out = appendCount(out, len(ciphers))
	out = appendCount(out, len(exts))
	out = h.appendALPN(out)

	if sorted {
		slices.Sort(ciphers)
		exts = withoutGREASE(h.Extensions, true)
		slices.Sort(exts)
	}
	out = append(out, '_')
	list := appendHexList(nil, ciphers)
	out = appendPart(out, list, len(ciphers) == 0, hashed)

	out = append(out, '_')
	list = appendHexList(list[:0], exts)
	if sigs := withoutGREASE(h.SignatureAlgorithms, false); len(sigs) > 0 {
		list = append(list, '_')
		list = appendHexList(list, sigs)
	}
	out = appendPart(out, list, len(exts) == 0, hashed)
	return string(out)
}

// ja4Version is the version JA4 reports.
func (h *ClientHello) ja4Version() uint16 {
	var best uint16
	found := false
	for _, v := range h.SupportedVersions {
		if !IsGREASE(v) && (!found || v > best) {
			best, found = v, true
		}
	}
	if found {
		return best
	}
	return h.Version
}

func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func appendCount(b []byte, n int) []byte {
	n = min(n, ja4MaxCount)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

const hexDigits = "0123456789abcdef"

func (h *ClientHello) appendALPN(b []byte) []byte {
	if len(h.ALPN) == 0 || h.ALPN[0] == "" {
		return append(b, '0', '0')
	}
	p := h.ALPN[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	return append(b, hexDigits[first>>4], hexDigits[last&0x0f])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// withoutGREASE returns a copy of vs without GREASE values and, if
// dropSNIALPN is set, without the server_name and ALPN extension types.
func withoutGREASE(vs []uint16, dropSNIALPN bool) []uint16 {
	out := make([]uint16, 0, len(vs))
	for _, v := range vs {
		if IsGREASE(v) || dropSNIALPN && (v == extServerName || v == extALPN) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// appendHexList appends vs as 4-digit lowercase hex joined by ",".
func appendHexList(b []byte, vs []uint16) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	}
	return b
}

// appendPart appends one JA4 list part: raw, or its truncated hash, or
// the empty marker when the list has no values.
func appendPart(b, list []byte, empty, hashed bool) []byte {
	switch {
	case !hashed:
		return append(b, list...)
	case empty:
		return append(b, ja4Empty...)
	}
	sum := sha256.Sum256(list)
	return hex.AppendEncode(b, sum[:ja4HashLen/2])
}
