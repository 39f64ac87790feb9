package http1

// Byte classes as lookup tables, so that the hot loops do one load per byte.
var (
	// tchar: token characters (RFC 9110 5.6.2), used for methods, field
	// names and chunk extension names and values.
	tchar = set(alnum + "!#$%&'*+-.^_`|~")

	// fieldVChar: what a field value, reason phrase or quoted-string may
	// hold: VCHAR, SP, HTAB and obs-text (RFC 9110 5.5, RFC 9112 4).
	fieldVChar = with(span(0x21, 0xff), " \t", "\x7f")

	// targetChar: the request-target may not contain whitespace, CTLs, DEL
	// or non-ASCII bytes (RFC 9112 3.2, RFC 3986 2).
	targetChar = span(0x21, 0x7e)

	// regNameChar: unreserved / sub-delims / "%" (RFC 3986 3.2.2).
	regNameChar = set(alnum + "-._~" + "!$&'()*+,;=" + "%")

	// ipLiteralChar: what may appear between "[" and "]": IPv6 addresses
	// and IPvFuture (RFC 3986 3.2.2).
	ipLiteralChar = set(alnum + "-._~" + "!$&'()*+,;=" + ":")

	// qdText: quoted-string content other than DQUOTE and backslash
	// (RFC 9110 5.6.4).
	qdText = with(span(0x21, 0xff), " \t", "\"\\\x7f")

	// unhex maps a hex digit to its value and anything else to -1.
	unhex = func() (t [256]int8) {
		for i := range t {
			t[i] = -1
		}
		for i := 0; i < 10; i++ {
			t['0'+i] = int8(i)
		}
		for i := 0; i < 6; i++ {
			t['a'+i] = int8(10 + i)
			t['A'+i] = int8(10 + i)
		}
		return t
	}()
)

const alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func set(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

func span(lo, hi int) (t [256]bool) {
	for i := lo; i <= hi; i++ {
		t[i] = true
	}
	return t
}

func with(t [256]bool, add, remove string) [256]bool {
	for i := 0; i < len(add); i++ {
		t[add[i]] = true
	}
	for i := 0; i < len(remove); i++ {
		t[remove[i]] = false
	}
	return t
}

func isDigit(c byte) bool { return c-'0' < 10 }
