package http1

import (
	"bytes"
	"encoding/binary"

	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
)

// maxEmptyLines is how many empty lines may precede a request line.
const maxEmptyLines = 4

// resolve returns the limits in force, taking defaults for zero fields.
func resolve(l *Limits, defHead, defFields int) (line, head, fields int) {
	line, head, fields = limits.MaxRequestLine, defHead, defFields
	if l != nil {
		if l.MaxRequestLine > 0 {
			line = l.MaxRequestLine
		}
		if l.MaxHeaderBytes > 0 {
			head = l.MaxHeaderBytes
		}
		if l.MaxHeaderFields > 0 {
			fields = l.MaxHeaderFields
		}
	}
	return line, head, fields
}

// ParseRequest parses the request head at the start of buf into req, which
// the caller has Reset. It returns the length of the head, leading empty
// lines included; the body, if any, starts at buf[n:]. Every slice in req
// aliases buf. A nil lim, or zero fields in it, means DefaultLimits.
//
// If buf holds only part of a head it returns 0, ErrIncomplete, unless the
// part already breaks a rule or a limit: a request line with no end within
// MaxRequestLine bytes is a 414, a buffer of MaxHeaderBytes with no end of
// head a 431, and a bad byte or too many fields are rejected as soon as
// they are seen. Any other error is an *Error whose Status is what to
// answer; the *Error values are shared and must not be modified. A failed
// call appends no fields to req.Header, so it may be retried on the same
// req once more bytes have arrived (each call parses from the start of
// buf); other fields of req may have been set.
//
// req.Scheme is left to the caller. For CONNECT, Path and Authority are
// both the authority-form target, so that AppendRequestHead reproduces it.
func ParseRequest(buf []byte, lim *Limits, req *message.Request) (n int, err error) {
	maxLine, maxHead, maxFields := resolve(lim, limits.MaxHeaderBytes, limits.MaxHeaderFields)

	// RFC 9112 2.2: a server SHOULD ignore at least one empty line received
	// before the request-line. A few are skipped; more is not robustness.
	start := 0
	for empty := 0; ; empty++ {
		if start >= len(buf) {
			return 0, ErrIncomplete
		}
		c := buf[start]
		if c != '\r' && c != '\n' {
			break
		}
		switch {
		case empty == maxEmptyLines:
			return 0, reqErr(fLeadingLines)
		case c == '\n':
			return 0, reqErr(fBareLF)
		case start+1 == len(buf):
			return 0, ErrIncomplete
		case buf[start+1] != '\n':
			return 0, reqErr(fBareCR)
		}
		start += 2
	}

	lineEnd, f := startLine(buf, start, maxLine, maxHead)
	if f != fNone {
		return 0, reqErr(f)
	}
	if f = parseRequestLine(buf[start:lineEnd], req); f != fNone {
		return 0, reqErr(f)
	}
	base := len(req.Header.Fields)
	headEnd, f := headFields(buf, lineEnd, maxHead, maxFields, &req.Header)
	if f == fNone {
		f = requestSemantics(req, req.Header.Fields[base:])
	}
	if f != fNone {
		truncate(&req.Header, base)
		return 0, reqErr(f)
	}
	return headEnd, nil
}

// ParseResponse parses the response head at the start of buf into resp,
// which the caller has Reset, with the same strictness as ParseRequest.
// Every error is an *Error with Status 502 (or ErrIncomplete). Zero limits
// default to limits.MaxResponseHeaderBytes and MaxResponseHeaderFields;
// MaxRequestLine bounds the status line. Interim (1xx) responses are parsed
// like any other: the caller loops until a final one.
func ParseResponse(buf []byte, lim *Limits, resp *message.Response) (n int, err error) {
	maxLine, maxHead, maxFields := resolve(lim, limits.MaxResponseHeaderBytes, limits.MaxResponseHeaderFields)
	lineEnd, f := startLine(buf, 0, maxLine, maxHead)
	if f != fNone {
		return 0, respErr(f)
	}
	if f = parseStatusLine(buf[:lineEnd], resp); f != fNone {
		return 0, respErr(f)
	}
	base := len(resp.Header.Fields)
	headEnd, f := headFields(buf, lineEnd, maxHead, maxFields, &resp.Header)
	var fr framing
	if f == fNone {
		f = fr.scan(resp.Header.Fields[base:], true, resp.ProtoMinor)
	}
	if f != fNone {
		truncate(&resp.Header, base)
		return 0, respErr(f)
	}
	resp.ContentLength = fr.length
	resp.Chunked = fr.chunked
	resp.Close = fr.close || (resp.ProtoMinor == 0 && !fr.keepAlive)
	return headEnd, nil
}

// truncate drops the fields a failed parse appended, so that a caller who
// calls again with more bytes, without a Reset in between, does not see
// them twice.
func truncate(h *message.Header, n int) {
	clear(h.Fields[n:])
	h.Fields = h.Fields[:n]
}

// startLine finds the start line beginning at buf[start] and returns the
// index of its CR. A line with no end within maxLine bytes is too long.
func startLine(buf []byte, start, maxLine, maxHead int) (lineEnd int, f fault) {
	rest := buf[start:]
	nl := bytes.IndexByte(rest[:min(len(rest), maxLine)], '\n')
	if nl < 0 {
		if len(rest) >= maxLine {
			return 0, fLineTooLong
		}
		if len(buf) >= maxHead {
			return 0, fHeadTooLarge
		}
		return 0, fIncomplete
	}
	// RFC 9112 2.2: Weir accepts only CRLF as a line terminator; a bare LF
	// is how several request-smuggling attacks split heads differently.
	if nl == 0 || rest[nl-1] != '\r' {
		return 0, fBareLF
	}
	return start + nl - 1, fNone
}

// headFields parses the field lines after the start line, whose CR is at
// buf[lineEnd], and returns the length of the head. A head that does not
// end within maxHead bytes is too large.
func headFields(buf []byte, lineEnd, maxHead, maxFields int, hdr *message.Header) (int, fault) {
	n, f := parseFields(buf[:min(len(buf), maxHead)], lineEnd+2, maxFields, hdr)
	if f == fIncomplete && len(buf) >= maxHead {
		f = fHeadTooLarge
	}
	return n, f
}

// parseRequestLine parses "method SP request-target SP HTTP-version"
// (RFC 9112 3), without its CRLF.
func parseRequestLine(line []byte, req *message.Request) fault {
	i := 0
	for i < len(line) && tchar[line[i]] {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		return fMethod
	}
	req.Method = line[:i]
	i++
	ts := i
	for i < len(line) && targetChar[line[i]] {
		i++
	}
	if i == ts || i == len(line) || line[i] != ' ' {
		return fRequestLine
	}
	req.Target = line[ts:i]
	major, minor, f := parseVersion(line[i+1:])
	if f != fNone {
		return f
	}
	req.ProtoMajor, req.ProtoMinor = major, minor
	return fNone
}

// parseVersion accepts exactly "HTTP/1.1" and "HTTP/1.0". HTTP-name is
// case-sensitive (RFC 9112 2.3); another well-formed version gets 505.
func parseVersion(v []byte) (major, minor int, f fault) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return 0, 0, fVersion
	}
	if v[5] != '1' || (v[7] != '0' && v[7] != '1') {
		return 0, 0, fVersionUnsupported
	}
	return 1, int(v[7] - '0'), fNone
}

// parseStatusLine parses "HTTP-version SP status-code SP [reason-phrase]"
// (RFC 9112 4), without its CRLF. A missing SP after the code is accepted
// too, as many servers send "HTTP/1.1 200" for an empty reason.
func parseStatusLine(line []byte, resp *message.Response) fault {
	if len(line) < 12 || line[8] != ' ' {
		return fStatusLine
	}
	major, minor, f := parseVersion(line[:8])
	if f != fNone {
		return f
	}
	c := line[9:12]
	if !isDigit(c[0]) || !isDigit(c[1]) || !isDigit(c[2]) {
		return fStatus
	}
	code := int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	if code < 100 || code > 599 {
		return fStatus
	}
	reason := line[12:]
	if len(reason) > 0 {
		if reason[0] != ' ' {
			return fStatusLine
		}
		reason = reason[1:]
		for _, b := range reason {
			if !fieldVChar[b] {
				return fStatusLine
			}
		}
	}
	resp.ProtoMajor, resp.ProtoMinor = major, minor
	resp.Status = code
	resp.Reason = reason
	return fNone
}

// parseFields parses field lines (RFC 9112 5) starting at h[pos] up to and
// including the empty line that ends them, appending to hdr, and returns
// the index just past that empty line. If h ends first it returns
// fIncomplete, having rejected anything invalid up to there. Request
// heads, response heads and chunked trailers all come through here.
func parseFields(h []byte, pos, maxFields int, hdr *message.Header) (int, fault) {
	count := 0
	for {
		if pos >= len(h) {
			return 0, fIncomplete
		}
		switch h[pos] {
		case '\r':
			if pos+1 == len(h) {
				return 0, fIncomplete
			}
			if h[pos+1] != '\n' {
				return 0, fBareCR
			}
			return pos + 2, fNone
		case '\n':
			return 0, fBareLF
		case ' ', '\t':
			// RFC 9112 5.2: obs-fold is rejected, never unfolded.
			return 0, fObsFold
		}
		ns := pos
		for pos < len(h) && tchar[h[pos]] {
			pos++
		}
		if pos == len(h) {
			return 0, fIncomplete
		}
		// RFC 9112 5.1: no whitespace is allowed between the field name
		// and the colon; a server MUST reject such a request with 400.
		if pos == ns || h[pos] != ':' {
			return 0, fFieldName
		}
		name := h[ns:pos]
		pos++
		for pos < len(h) && (h[pos] == ' ' || h[pos] == '\t') {
			pos++
		}
		vs := pos
		pos = valueEnd(h, pos)
		switch {
		case pos == len(h):
			return 0, fIncomplete
		case h[pos] == '\n':
			return 0, fBareLF
		case h[pos] != '\r':
			// RFC 9110 5.5: NUL and other CTLs are invalid in a value.
			return 0, fFieldValue
		case pos+1 == len(h):
			return 0, fIncomplete
		case h[pos+1] != '\n':
			return 0, fBareCR
		}
		ve := pos
		for ve > vs && (h[ve-1] == ' ' || h[ve-1] == '\t') {
			ve--
		}
		if count++; count > maxFields {
			return 0, fTooManyFields
		}
		hdr.Fields = append(hdr.Fields, message.Field{Name: name, Value: h[vs:ve]})
		pos += 2
	}
}

// valueEnd returns the index of the first byte at or after i that may not
// appear in a field value. It tests eight bytes at a time for a byte below
// 0x20 or equal to 0x7f; obs-text (0x80-0xff) never trips either test.
func valueEnd(h []byte, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(h); i += 8 {
		x := binary.LittleEndian.Uint64(h[i:])
		y := x ^ (lo * 0x7f)
		if ((x-lo*0x20)&^x|(y-lo)&^y)&hi != 0 {
			break
		}
	}
	for i < len(h) && fieldVChar[h[i]] {
		i++
	}
	return i
}

// framing is what the fields of a head say about its body and connection.
type framing struct {
	length    int64 // Content-Length, -1 when absent
	chunked   bool
	close     bool
	keepAlive bool
	hosts     int
	host      []byte
}

// scan reads the framing fields of a message of version 1.minor.
// Requests are stricter than RFC 9110 8.6 requires, like nginx: a second
// Content-Length field, or a list in one, is rejected even if the values
// agree, since no legitimate client sends one. Upstream responses may
// repeat an identical Content-Length field, but not in a list.
func (fr *framing) scan(fields []message.Field, isResp bool, minor int) fault {
	fr.length = -1
	for i := range fields {
		name, v := fields[i].Name, fields[i].Value
		switch len(name) {
		case 4:
			if !isResp && message.EqualFold(name, "host") {
				fr.hosts++
				fr.host = v
			}
		case 10:
			if message.EqualFold(name, "connection") {
				connectionTokens(v, fr)
			}
		case 14:
			if message.EqualFold(name, "content-length") {
				n, ok := parseContentLength(v)
				if !ok {
					return fCL
				}
				if fr.length >= 0 && (!isResp || n != fr.length) {
					return fDupCL
				}
				fr.length = n
			}
		case 17:
			// RFC 9112 6.1, 6.3: chunked is the only coding Weir frames
			// by, and it must be the final one. Weir does not decode any
			// other coding, so a list (even "gzip, chunked") or a second
			// field is rejected rather than passed on to be read two ways.
			if message.EqualFold(name, "transfer-encoding") {
				if fr.chunked || !message.EqualFold(v, "chunked") {
					return fTE
				}
				fr.chunked = true
			}
		}
	}
	if fr.chunked {
		if minor == 0 {
			// RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message
			// means the framing is faulty.
			return fTEInHTTP10
		}
		if fr.length >= 0 {
			// RFC 9112 6.1, 6.3: a message with both ought to be handled
			// as an error; the two could be read differently downstream.
			return fCLAndTE
		}
	}
	return fNone
}

// maxContentLength is the largest Content-Length accepted, 2^62.
const maxContentLength = 1 << 62

// parseContentLength parses 1*DIGIT (RFC 9110 8.6): no sign, no spaces,
// no list.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if n > maxContentLength {
		return 0, false
	}
	return int64(n), true
}

// connectionTokens notes "close" and "keep-alive" in a Connection value
// (RFC 9110 7.6.1, RFC 9112 9.3).
func connectionTokens(v []byte, fr *framing) {
	for len(v) > 0 {
		t := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		t = message.TrimOWS(t)
		if message.EqualFold(t, "close") {
			fr.close = true
		} else if message.EqualFold(t, "keep-alive") {
			fr.keepAlive = true
		}
	}
}

// requestSemantics checks the target form, Host and framing of a parsed
// request and fills the fields derived from them.
func requestSemantics(req *message.Request, fields []message.Field) fault {
	var fr framing
	if f := fr.scan(fields, false, req.ProtoMinor); f != fNone {
		return f
	}
	// RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request that
	// lacks Host, or has more than one, or has an invalid one.
	switch {
	case fr.hosts > 1:
		return fDupHost
	case fr.hosts == 0 && req.ProtoMinor == 1:
		return fNoHost
	case fr.hosts == 1 && !validHost(fr.host, false):
		return fBadHost
	}
	req.Authority = fr.host

	t := req.Target
	switch {
	case string(req.Method) == "CONNECT":
		// RFC 9112 3.2.3: CONNECT takes the authority-form, and only it,
		// and that form always has a port.
		if !validHost(t, true) {
			return fTarget
		}
		req.Path, req.Authority = t, t
	case t[0] == '/':
		req.Path = t
	case len(t) == 1 && t[0] == '*':
		// RFC 9112 3.2.4: the asterisk-form is only for OPTIONS.
		if string(req.Method) != "OPTIONS" {
			return fTarget
		}
		req.Path = t
	default:
		if f := absoluteForm(req, t); f != fNone {
			return f
		}
	}

	req.Chunked = fr.chunked
	if fr.chunked {
		req.ContentLength = -1
	} else {
		req.ContentLength = max(fr.length, 0)
	}
	req.Close = fr.close || (req.ProtoMinor == 0 && !fr.keepAlive)
	return fNone
}

// absoluteForm handles "http://authority/path" and "https://..." (RFC 9112
// 3.2.2). The authority comes from the target and any Host is ignored.
func absoluteForm(req *message.Request, t []byte) fault {
	var s int // length of "scheme:"
	switch {
	case len(t) >= 7 && message.EqualFold(t[:7], "http://"):
		s = 5
	case len(t) >= 8 && message.EqualFold(t[:8], "https://"):
		s = 6
	default:
		return fTarget
	}
	a := s + 2
	e := a
	for e < len(t) && t[e] != '/' && t[e] != '?' && t[e] != '#' {
		e++
	}
	// RFC 9110 4.2.1: an http URI with an empty host MUST be rejected;
	// RFC 9110 4.2.4: userinfo is treated as an error ('@' is not a host
	// character).
	if e == a || !validHost(t[a:e], false) {
		return fTarget
	}
	req.Authority = t[a:e]
	switch {
	case e == len(t):
		// RFC 9112 3.2.1: an empty path is sent as "/". The "//" after the
		// scheme supplies one without leaving buf.
		req.Path = t[s+1 : s+2]
	case t[e] == '/':
		req.Path = t[e:]
	default:
		// "http://h?q" has an empty path and a query; it would need a "/"
		// inserted to forward it. Nothing sends it, so it is refused.
		return fTarget
	}
	return fNone
}

// validHost reports whether v is uri-host [":" port] (RFC 9110 7.2,
// RFC 3986 3.2.2–3.2.3). needPort is for the authority-form, which must
// carry a port. An empty v is a valid (empty) Host unless needPort.
func validHost(v []byte, needPort bool) bool {
	if len(v) == 0 {
		return !needPort
	}
	i := 0
	if v[0] == '[' {
		i = 1
		for i < len(v) && ipLiteralChar[v[i]] {
			i++
		}
		if i == 1 || i == len(v) || v[i] != ']' {
			return false
		}
		i++
	} else {
		for i < len(v) && regNameChar[v[i]] {
			if v[i] == '%' {
				if i+2 >= len(v) || unhex[v[i+1]] < 0 || unhex[v[i+2]] < 0 {
					return false
				}
				i += 2
			}
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(v) {
		return !needPort
	}
	if v[i] != ':' {
		return false
	}
	port := v[i+1:]
	if len(port) == 0 {
		return !needPort
	}
	if len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// ValidHost reports whether v is a valid Host value or authority:
// uri-host [":" port] (RFC 9110 7.2), with a port when needPort. Front
// ends for other protocols check :authority with it, so that what reaches
// an HTTP/1.1 peer as Host is what Weir's own parser would have accepted.
func ValidHost(v []byte, needPort bool) bool { return len(v) > 0 && validHost(v, needPort) }

// ValidMethod reports whether v is a method that may go on an HTTP/1.1
// request line: a token (RFC 9110 9.1), as Weir's own parser requires. A
// method from HTTP/2 or HTTP/3 with a space in it would otherwise give a
// peer a different request-target from the one Weir routed on.
func ValidMethod(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// ValidOriginForm reports whether v is an origin-form request-target
// ("/path?query", RFC 9112 3.2.1) that may go on an HTTP/1.1 request line:
// no whitespace, control characters, DEL, non-ASCII bytes or fragment.
func ValidOriginForm(v []byte) bool {
	if len(v) == 0 || v[0] != '/' {
		return false
	}
	for _, c := range v {
		if !targetChar[c] || c == '#' {
			return false
		}
	}
	return true
}
