package testutil

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
)

// SimpleRequest is one request as the recording origin's deliberately
// simple reader saw it. The reader is lenient on purpose (bare LF line
// ends, any Transfer-Encoding that mentions chunked, the first
// Content-Length): it is an independent second opinion, so that bytes Weir
// forwards can never hide a request the way a stricter reader would.
type SimpleRequest struct {
	Method, Target, Proto string
	Header                [][2]string // in order, as received
	Chunked               bool
	ContentLength         int64 // -1 when absent
	Body                  []byte
	Trailer               [][2]string
	Raw                   []byte // every byte of the request, head and body
	HeadLen               int
	// Strict is nil when Weir's own strict parser accepts the head and
	// reads the same framing from it; otherwise it says what differs.
	Strict error
}

// Get returns the first value of a header field (case-insensitive).
func (r *SimpleRequest) Get(name string) (string, bool) {
	for _, f := range r.Header {
		if strings.EqualFold(f[0], name) {
			return f[1], true
		}
	}
	return "", false
}

// Summary is the one-line description used in scenario files.
func (r *SimpleRequest) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Method, r.Target, r.Proto)
	if h, ok := r.Get("Host"); ok {
		fmt.Fprintf(&b, " host=%q", h)
	}
	switch {
	case r.Chunked:
		b.WriteString(" chunked")
	default:
		// The value as received: "007" and "7" frame the same body, but
		// only one of them is safe to hand to every reader.
		if v, ok := r.Get("Content-Length"); ok {
			fmt.Fprintf(&b, " cl=%q", v)
		}
	}
	if v, ok := r.Get("Upgrade"); ok {
		fmt.Fprintf(&b, " upgrade=%q", v)
	}
	fmt.Fprintf(&b, " body=%s", Quote(r.Body))
	for _, f := range r.Trailer {
		fmt.Fprintf(&b, " trailer=%q", f[0]+": "+f[1])
	}
	if r.Strict != nil {
		fmt.Fprintf(&b, " STRICT-PARSE-FAILS(%v)", r.Strict)
	}
	return b.String()
}

// Quote quotes b the way scenario files write bytes: Go syntax.
func Quote(b []byte) string {
	return strconv.Quote(string(b))
}

// ParseSimple reads one request from the start of b. It returns the
// request and its length, or complete=false when b holds only part of one.
func ParseSimple(b []byte) (req *SimpleRequest, n int, complete bool) {
	// The head ends at the first empty line, CRLF or bare LF.
	end, bodyAt := -1, -1
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			end, bodyAt = i, i+2
			break
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			end, bodyAt = i, i+3
			break
		}
	}
	if end < 0 {
		return nil, 0, false
	}
	req = &SimpleRequest{ContentLength: -1, HeadLen: bodyAt}
	lines := strings.Split(string(b[:end]), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	parts := strings.SplitN(lines[0], " ", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	req.Method, req.Target, req.Proto = parts[0], parts[1], parts[2]
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		req.Header = append(req.Header, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	for _, f := range req.Header {
		switch {
		case strings.EqualFold(f[0], "Transfer-Encoding") && strings.Contains(strings.ToLower(f[1]), "chunked"):
			req.Chunked = true
		case strings.EqualFold(f[0], "Content-Length") && req.ContentLength < 0:
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil && v >= 0 {
				req.ContentLength = v
			}
		}
	}
	pos := bodyAt
	switch {
	case req.Chunked:
		for {
			nl := bytes.IndexByte(b[pos:], '\n')
			if nl < 0 {
				return nil, 0, false
			}
			line := strings.TrimSuffix(string(b[pos:pos+nl]), "\r")
			sizeText, _, _ := strings.Cut(line, ";")
			size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
			if err != nil || size < 0 {
				// Not a chunk line: the body ends here and the rest is
				// left over, to be reported as junk.
				break
			}
			pos += nl + 1
			if size == 0 {
				for {
					nl := bytes.IndexByte(b[pos:], '\n')
					if nl < 0 {
						return nil, 0, false
					}
					line := strings.TrimSuffix(string(b[pos:pos+nl]), "\r")
					pos += nl + 1
					if line == "" {
						break
					}
					name, value, _ := strings.Cut(line, ":")
					req.Trailer = append(req.Trailer, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
				}
				break
			}
			if int64(len(b)-pos) < size {
				return nil, 0, false
			}
			req.Body = append(req.Body, b[pos:pos+int(size)]...)
			pos += int(size)
			switch {
			case bytes.HasPrefix(b[pos:], []byte("\r\n")):
				pos += 2
			case bytes.HasPrefix(b[pos:], []byte("\n")):
				pos++
			case len(b)-pos < 2:
				return nil, 0, false
			}
		}
	case req.ContentLength > 0:
		if int64(len(b)-pos) < req.ContentLength {
			return nil, 0, false
		}
		req.Body = append(req.Body, b[pos:pos+int(req.ContentLength)]...)
		pos += int(req.ContentLength)
	}
	req.Raw = append([]byte(nil), b[:pos]...)
	req.Strict = strictCheck(req)
	return req, pos, true
}

// strictCheck parses the head again with http1, Weir's strict parser, and
// compares the framing both readers found.
func strictCheck(r *SimpleRequest) error {
	var m message.Request
	n, err := http1.ParseRequest(r.Raw, nil, &m)
	if err != nil {
		return err
	}
	switch {
	case n != r.HeadLen:
		return fmt.Errorf("head length %d, simple reader %d", n, r.HeadLen)
	case m.Chunked != r.Chunked:
		return fmt.Errorf("chunked %v, simple reader %v", m.Chunked, r.Chunked)
	case !m.Chunked && m.ContentLength != max(r.ContentLength, 0):
		return fmt.Errorf("content-length %d, simple reader %d", m.ContentLength, r.ContentLength)
	}
	if m.Chunked {
		var d http1.ChunkedDecoder
		var body []byte
		p := r.Raw[n:]
		for !d.Done() {
			data, k, err := d.Decode(p)
			p = p[k:]
			body = append(body, data...)
			if err != nil {
				return fmt.Errorf("chunked body: %v", err)
			}
		}
		if len(p) != 0 || !bytes.Equal(body, r.Body) {
			return fmt.Errorf("chunked body differs from the simple reader's")
		}
	}
	return nil
}

// SimpleResponse is one response as the test client's simple reader saw it.
type SimpleResponse struct {
	Status int
	Proto  string
	Header [][2]string
	Body   []byte
	Close  bool // Connection: close
	// Truncated is set when the connection closed before the body
	// was complete; Body holds what arrived.
	Truncated bool
	// ContentLengths is how many Content-Length fields the head had.
	ContentLengths int
}

// Get returns the first value of a header field (case-insensitive).
func (r *SimpleResponse) Get(name string) (string, bool) {
	for _, f := range r.Header {
		if strings.EqualFold(f[0], name) {
			return f[1], true
		}
	}
	return "", false
}

// ParseSimpleResponse reads one response from the start of b. eof says
// that b is everything the peer will send (a body without length ends
// there). head says whether the request was HEAD. It returns
// complete=false when more bytes are needed and err when b is not a
// response at all.
func ParseSimpleResponse(b []byte, eof, head bool) (resp *SimpleResponse, n int, complete bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if eof && len(b) > 0 {
			return nil, 0, false, fmt.Errorf("truncated response head %q", Clip(b))
		}
		return nil, 0, false, nil
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	resp = &SimpleResponse{}
	proto, rest, _ := strings.Cut(lines[0], " ")
	code, _, _ := strings.Cut(rest, " ")
	resp.Proto = proto
	if resp.Status, err = strconv.Atoi(code); err != nil || !strings.HasPrefix(proto, "HTTP/1.") {
		return nil, 0, false, fmt.Errorf("bad status line %q", lines[0])
	}
	cl := int64(-1)
	chunked := false
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, 0, false, fmt.Errorf("bad header line %q", l)
		}
		value = strings.TrimSpace(value)
		resp.Header = append(resp.Header, [2]string{name, value})
		switch strings.ToLower(name) {
		case "content-length":
			resp.ContentLengths++
			if cl, err = strconv.ParseInt(value, 10, 64); err != nil {
				return nil, 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case "transfer-encoding":
			chunked = strings.EqualFold(value, "chunked")
		case "connection":
			resp.Close = strings.Contains(strings.ToLower(value), "close")
		}
	}
	pos := end + 4
	switch {
	case head || resp.Status < 200 || resp.Status == 204 || resp.Status == 304:
	case chunked:
		for {
			nl := bytes.Index(b[pos:], []byte("\r\n"))
			if nl < 0 {
				return cut(resp, eof, len(b))
			}
			sizeText, _, _ := strings.Cut(string(b[pos:pos+nl]), ";")
			size, perr := strconv.ParseInt(sizeText, 16, 64)
			if perr != nil {
				return nil, 0, false, fmt.Errorf("bad chunk line %q", b[pos:pos+nl])
			}
			pos += nl + 2
			if size == 0 {
				t := bytes.Index(b[pos:], []byte("\r\n\r\n"))
				if bytes.HasPrefix(b[pos:], []byte("\r\n")) {
					pos += 2
				} else if t >= 0 {
					pos += t + 4
				} else {
					return cut(resp, eof, len(b))
				}
				break
			}
			if int64(len(b)-pos) < size+2 {
				if eof {
					resp.Body = append(resp.Body, b[pos:min(len(b), pos+int(size))]...)
				}
				return cut(resp, eof, len(b))
			}
			resp.Body = append(resp.Body, b[pos:pos+int(size)]...)
			pos += int(size) + 2
		}
	case cl >= 0:
		if int64(len(b)-pos) < cl {
			resp.Body = b[pos:]
			return cut(resp, eof, len(b))
		}
		resp.Body = b[pos : pos+int(cl)]
		pos += int(cl)
	default:
		if !eof {
			return nil, 0, false, nil
		}
		resp.Body = b[pos:]
		pos = len(b)
	}
	return resp, pos, true, nil
}

// cut ends a response whose body is incomplete: with more bytes to come
// it is not complete yet; at the close it is a truncated response.
func cut(resp *SimpleResponse, eof bool, n int) (*SimpleResponse, int, bool, error) {
	if !eof {
		return nil, 0, false, nil
	}
	resp.Truncated = true
	return resp, n, true, nil
}
