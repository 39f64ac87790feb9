// Package message is Weir's protocol-neutral HTTP message model. Every front
// end (HTTP/1.1 today, HTTP/2 and HTTP/3 later) fills the same Request and
// Response heads, so filters see one API whatever the wire protocol.
//
// Heads are ordered, case-preserving lists of fields. The byte slices in a
// parsed head alias the connection's read buffer: they are valid only until
// the engine moves on to the next message, and filters must not keep them.
// Values a filter adds may be Go strings; they are never written through.
package message

import "unsafe"

// Field is one header field as it appeared on the wire (or as a filter set
// it). Name keeps its original case.
type Field struct {
	Name  []byte
	Value []byte
}

// Header is an ordered list of fields. The zero value is empty and ready.
type Header struct {
	Fields []Field
}

// S turns a string into a byte slice without copying. The result must never
// be written to; Weir only ever reads header bytes.
func S(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// B turns bytes into a string without copying; the string is valid only as
// long as b is unchanged.
func B(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Len returns the number of fields.
func (h *Header) Len() int { return len(h.Fields) }

// Reset empties h, keeping its storage.
func (h *Header) Reset() {
	clear(h.Fields)
	h.Fields = h.Fields[:0]
}

// Get returns the value of the first field named name (ASCII
// case-insensitive), or nil.
func (h *Header) Get(name string) []byte {
	for i := range h.Fields {
		if EqualFold(h.Fields[i].Name, name) {
			return h.Fields[i].Value
		}
	}
	return nil
}

// Has reports whether a field named name exists.
func (h *Header) Has(name string) bool {
	for i := range h.Fields {
		if EqualFold(h.Fields[i].Name, name) {
			return true
		}
	}
	return false
}

// Count returns how many fields are named name.
func (h *Header) Count(name string) int {
	n := 0
	for i := range h.Fields {
		if EqualFold(h.Fields[i].Name, name) {
			n++
		}
	}
	return n
}

// Add appends a field.
func (h *Header) Add(name, value []byte) {
	h.Fields = append(h.Fields, Field{Name: name, Value: value})
}

// AddString appends a field from strings without copying them.
func (h *Header) AddString(name, value string) {
	h.Fields = append(h.Fields, Field{Name: S(name), Value: S(value)})
}

// Set replaces the value of the first field named name and removes any
// others; it appends the field if there is none.
func (h *Header) Set(name string, value []byte) {
	found := false
	j := 0
	for i := range h.Fields {
		f := h.Fields[i]
		if EqualFold(f.Name, name) {
			if found {
				continue
			}
			found = true
			f.Value = value
		}
		h.Fields[j] = f
		j++
	}
	clear(h.Fields[j:])
	h.Fields = h.Fields[:j]
	if !found {
		h.Fields = append(h.Fields, Field{Name: S(name), Value: value})
	}
}

// SetString is Set with a string value.
func (h *Header) SetString(name, value string) { h.Set(name, S(value)) }

// Del removes every field named name and returns how many it removed.
func (h *Header) Del(name string) int {
	j := 0
	for i := range h.Fields {
		if EqualFold(h.Fields[i].Name, name) {
			continue
		}
		h.Fields[j] = h.Fields[i]
		j++
	}
	n := len(h.Fields) - j
	clear(h.Fields[j:])
	h.Fields = h.Fields[:j]
	return n
}

// DelFunc removes every field for which drop returns true.
func (h *Header) DelFunc(drop func(f *Field) bool) int {
	j := 0
	for i := range h.Fields {
		if drop(&h.Fields[i]) {
			continue
		}
		h.Fields[j] = h.Fields[i]
		j++
	}
	n := len(h.Fields) - j
	clear(h.Fields[j:])
	h.Fields = h.Fields[:j]
	return n
}

// CopyFrom makes h a shallow copy of src (the byte slices are shared).
func (h *Header) CopyFrom(src *Header) {
	h.Fields = append(h.Fields[:0], src.Fields...)
}

// HasToken reports whether any field named name carries token in its
// comma-separated list (as in Connection: keep-alive, Upgrade).
func (h *Header) HasToken(name, token string) bool {
	for i := range h.Fields {
		if !EqualFold(h.Fields[i].Name, name) {
			continue
		}
		found := false
		EachToken(h.Fields[i].Value, func(t []byte) bool {
			if EqualFold(t, token) {
				found = true
				return false
			}
			return true
		})
		if found {
			return true
		}
	}
	return false
}

// EachToken calls fn for every element of a comma-separated list, with
// surrounding whitespace trimmed and empty elements skipped, until fn
// returns false.
func EachToken(v []byte, fn func(tok []byte) bool) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := TrimOWS(v[:i])
		if len(tok) > 0 && !fn(tok) {
			return
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

// TrimOWS trims spaces and tabs from both ends.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold reports whether b equals s under ASCII case folding.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || (x|0x20) < 'a' || (x|0x20) > 'z' {
			return false
		}
	}
	return true
}

// EqualFoldBytes is EqualFold for two byte slices.
func EqualFoldBytes(a, b []byte) bool { return EqualFold(a, B(b)) }

// Request is a request head.
type Request struct {
	// Method as received, e.g. "GET".
	Method []byte
	// Target is the request-target as received: origin-form ("/p?q"),
	// absolute-form ("http://h/p"), authority-form or "*".
	Target []byte
	// Path is the path and query of the target (for absolute-form, the
	// part after the authority; "*" for asterisk-form).
	Path []byte
	// Authority is the host[:port] the request is for: the target's
	// authority for absolute-form, else the Host field.
	Authority []byte
	// Scheme is "http" or "https" as the client reached Weir.
	Scheme string
	// ProtoMajor and ProtoMinor are the HTTP version (1.0, 1.1, 2, 3).
	ProtoMajor, ProtoMinor int
	Header                 Header
	// Trailer holds trailer fields once a chunked body has ended.
	Trailer Header
	// ContentLength is the body length from Content-Length, 0 when the
	// request has no body, or -1 when the length is unknown (chunked).
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked.
	Chunked bool
	// Close reports that the client asked to close after this exchange
	// (Connection: close, or HTTP/1.0 without keep-alive).
	Close bool
}

// Reset clears r for reuse, keeping storage.
func (r *Request) Reset() {
	h, t := r.Header, r.Trailer
	h.Reset()
	t.Reset()
	*r = Request{Header: h, Trailer: t}
}

// IsMethod reports whether the method is m.
func (r *Request) IsMethod(m string) bool { return string(r.Method) == m }

// Idempotent reports whether the method is idempotent (RFC 9110 9.2.2),
// which makes a retry after a reset safe.
func (r *Request) Idempotent() bool {
	switch string(r.Method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// Response is a response head.
type Response struct {
	ProtoMajor, ProtoMinor int
	Status                 int
	// Reason is the reason phrase as received (may be empty).
	Reason  []byte
	Header  Header
	Trailer Header
	// ContentLength is the body length from Content-Length, or -1 when it
	// is not given (chunked, or delimited by close).
	ContentLength int64
	Chunked       bool
	// Close reports that the peer will close after this response.
	Close bool
}

// Reset clears r for reuse, keeping storage.
func (r *Response) Reset() {
	h, t := r.Header, r.Trailer
	h.Reset()
	t.Reset()
	*r = Response{Header: h, Trailer: t}
}
