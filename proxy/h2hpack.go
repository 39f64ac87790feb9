package proxy

import (
	"golang.org/x/net/http2/hpack"

	"github.com/weirproxy/weir/message"
)

// Weir encodes the header blocks it sends to HTTP/2 clients with the
// static table only (RFC 7541 Appendix A): every field is either a whole
// static entry or a literal "without indexing". Nothing is added to the
// dynamic table, so the encoder has no state shared between streams,
// blocks can be encoded by each stream's goroutine without a lock, and a
// client's SETTINGS_HEADER_TABLE_SIZE never needs a size update. nginx
// does the same; the cost is a few bytes per response that a dynamic
// table would have saved.

// hpackStatic is RFC 7541 Appendix A, index 1 first.
var hpackStatic = [...][2]string{
	{":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"},
	{":path", "/index.html"}, {":scheme", "http"}, {":scheme", "https"},
	{":status", "200"}, {":status", "204"}, {":status", "206"}, {":status", "304"},
	{":status", "400"}, {":status", "404"}, {":status", "500"},
	{"accept-charset", ""}, {"accept-encoding", "gzip, deflate"}, {"accept-language", ""},
	{"accept-ranges", ""}, {"accept", ""}, {"access-control-allow-origin", ""}, {"age", ""},
	{"allow", ""}, {"authorization", ""}, {"cache-control", ""}, {"content-disposition", ""},
	{"content-encoding", ""}, {"content-language", ""}, {"content-length", ""},
	{"content-location", ""}, {"content-range", ""}, {"content-type", ""}, {"cookie", ""},
	{"date", ""}, {"etag", ""}, {"expect", ""}, {"expires", ""}, {"from", ""}, {"host", ""},
	{"if-match", ""}, {"if-modified-since", ""}, {"if-none-match", ""}, {"if-range", ""},
	{"if-unmodified-since", ""}, {"last-modified", ""}, {"link", ""}, {"location", ""},
	{"max-forwards", ""}, {"proxy-authenticate", ""}, {"proxy-authorization", ""},
	{"range", ""}, {"referer", ""}, {"refresh", ""}, {"retry-after", ""}, {"server", ""},
	{"set-cookie", ""}, {"strict-transport-security", ""}, {"transfer-encoding", ""},
	{"user-agent", ""}, {"vary", ""}, {"via", ""}, {"www-authenticate", ""},
}

// hpackName maps a lower-case field name to its first static index;
// hpackStatus maps the statuses that have a whole static entry.
var (
	hpackName   = map[string]int{}
	hpackStatus = map[int]int{200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}
)

func init() {
	for i := len(hpackStatic) - 1; i >= 0; i-- {
		hpackName[hpackStatic[i][0]] = i + 1
	}
}

// appendHpackInt appends v with an n-bit prefix (RFC 7541 5.1); first
// holds the bits above the prefix.
func appendHpackInt(b []byte, first byte, n uint, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(max))
	v -= max
	for v >= 128 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendHpackString appends a string literal, Huffman-coded when that is
// shorter (RFC 7541 5.2).
func appendHpackString(b, s []byte) []byte {
	str := message.B(s)
	if hl := hpack.HuffmanEncodeLength(str); hl < uint64(len(s)) {
		b = appendHpackInt(b, 0x80, 7, hl)
		return hpack.AppendHuffmanString(b, str)
	}
	b = appendHpackInt(b, 0, 7, uint64(len(s)))
	return append(b, s...)
}

// appendHpackStatus appends the :status pseudo-field.
func appendHpackStatus(b []byte, status int) []byte {
	if i, ok := hpackStatus[status]; ok {
		return appendHpackInt(b, 0x80, 7, uint64(i))
	}
	b = appendHpackInt(b, 0, 4, 8) // literal, name :status
	var d [3]byte
	d[0], d[1], d[2] = byte('0'+status/100%10), byte('0'+status/10%10), byte('0'+status%10)
	return appendHpackString(b, d[:])
}

// appendHpackField appends one field as a literal without indexing. The
// name is lower-cased on the way (HTTP/2 field names are lower case,
// RFC 9113 8.2.1); lower is scratch space for it.
func appendHpackField(b, lower, name, value []byte) ([]byte, []byte) {
	lower = append(lower[:0], name...)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	if i, ok := hpackName[message.B(lower)]; ok {
		b = appendHpackInt(b, 0, 4, uint64(i))
	} else {
		b = append(b, 0)
		b = appendHpackString(b, lower)
	}
	return appendHpackString(b, value), lower
}
