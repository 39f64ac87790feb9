package proxyauth

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"
)

// Header constants.
const (
	// DefaultRealm is the realm Challenge uses when given none.
	DefaultRealm = "weir"

	// DefaultChallenge is the Proxy-Authenticate value for DefaultRealm.
	DefaultChallenge = `Basic realm="weir", charset="UTF-8"`

	// MaxAuthorizationLength bounds the Proxy-Authorization value
	// ParseProxyAuthorization accepts, in bytes.
	MaxAuthorizationLength = 4096
)

// ParseProxyAuthorization reads a Proxy-Authorization field value of the
// Basic scheme (RFC 7617): "Basic" in any case, one or more spaces, then
// the base64 (standard alphabet, padded, nothing after the padding) of
// "user:password". Spaces and tabs around the value are ignored. The user
// is what comes before the first colon and must not be empty; neither
// part may hold control characters. Any other value, scheme or encoding
// gives ok false.
func ParseProxyAuthorization(value []byte) (user, pass string, ok bool) {
	v := trimOWS(value)
	if len(v) > MaxAuthorizationLength {
		return "", "", false
	}
	const scheme = "basic"
	if len(v) <= len(scheme) || v[len(scheme)] != ' ' || !asciiEqualFold(v[:len(scheme)], scheme) {
		return "", "", false
	}
	token := v[len(scheme):]
	for len(token) > 0 && token[0] == ' ' {
		token = token[1:]
	}
	if len(token) == 0 || len(token)%4 != 0 {
		return "", "", false
	}
	// The decoder skips CR and LF; the alphabet check below does not let
	// them through.
	for i, c := range token {
		if !isBase64Char(c) && (c != '=' || i < len(token)-2) {
			return "", "", false
		}
	}
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(token)))
	n, err := base64.StdEncoding.Strict().Decode(dec, token)
	if err != nil {
		return "", "", false
	}
	u, p, found := strings.Cut(string(dec[:n]), ":")
	if !found || u == "" || hasControl(u) || hasControl(p) {
		return "", "", false
	}
	return u, p, true
}

// Challenge returns the Proxy-Authenticate value a 407 answer carries:
// `Basic realm="<realm>", charset="UTF-8"`. An empty realm means
// DefaultRealm. It fails for a realm that is not UTF-8 or holds a double
// quote, a backslash or a control character (CR and LF included), which
// would break out of the quoted string.
func Challenge(realm string) (string, error) {
	if realm == "" {
		realm = DefaultRealm
	}
	if !utf8.ValidString(realm) || hasControl(realm) || strings.ContainsAny(realm, "\"\\") {
		return "", errors.New("proxyauth: realm must be UTF-8 without quotes, backslashes or control characters")
	}
	return `Basic realm="` + realm + `", charset="UTF-8"`, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range len(lower) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
