package http1

import (
	"bytes"

	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
)

// ChunkLimits bounds a chunked body's framing. Zero fields take the
// defaults limits.MaxChunkLine, limits.MaxTrailerBytes and
// limits.MaxHeaderFields.
type ChunkLimits struct {
	MaxChunkLine     int // one chunk-size line, extensions and CRLF included
	MaxTrailerBytes  int // the trailer section, its final CRLF included
	MaxTrailerFields int // fields in the trailer section
}

// maxChunkDigits keeps a chunk size below 2^60.
const maxChunkDigits = 15

// Decoder states. The size-line states come first so that one comparison
// tells whether a byte belongs to a chunk-size line.
const (
	stSize         uint8 = iota // first hex digit of a chunk size
	stSizeDigits                // further hex digits
	stSizeBWS                   // whitespace after the size: ';' must follow
	stExtPreName                // after ';'
	stExtName                   // chunk-ext-name
	stExtPostName               // whitespace after a name: '=' or ';'
	stExtPreValue               // after '='
	stExtToken                  // token chunk-ext-val
	stExtQuoted                 // inside a quoted-string
	stExtQuotedEsc              // after a backslash in a quoted-string
	stExtQuotedEnd              // after the closing DQUOTE
	stExtPostValue              // whitespace after a value: ';' must follow
	stSizeLF                    // CR seen, LF expected
	stData                      // chunk data
	stDataCR                    // CR after chunk data
	stDataLF                    // LF after chunk data
	stTrailer                   // trailer section
	stDone                      // finished
)

// ChunkedDecoder decodes a chunked body (RFC 9112 7.1) incrementally,
// however its bytes are split between calls. The zero value decodes with
// default limits; Reset makes a decoder ready for another body.
//
// Decode contract: Decode(p) reads p from the start, keeping all framing
// state (sizes, extensions, trailer bytes) itself, so the caller never has
// to keep consumed bytes. Each call returns one of:
//
//   - data non-empty, err nil: data is the next run of body bytes,
//     p[consumed-len(data):consumed]. Decode stops after one run; call
//     again with p[consumed:].
//   - data empty, err nil: the body is complete (Done reports true).
//     consumed counts the end of the body; p[consumed:] belongs to the
//     next message. Further calls return nil, 0, nil.
//   - err ErrIncomplete: all of p was consumed (consumed == len(p)) and
//     nothing more can happen without more bytes.
//   - err an *Error (Status 400): the body is malformed. consumed says how
//     far Decode read; the decoder keeps returning the error until Reset.
//
// So a caller loops: deliver data, advance by consumed, read more on
// ErrIncomplete, stop on Done or another error.
type ChunkedDecoder struct {
	lim    ChunkLimits
	state  uint8
	digits uint8
	fault  fault
	line   int   // bytes of the current chunk-size line so far
	remain int64 // data left in the chunk; the size while it is read
	tline  int   // where the current trailer line starts in tbuf
	tbuf   []byte
	trail  message.Header
}

// Reset readies d for a new body with the given limits, keeping the
// storage of its trailer buffer. Trailer fields from the previous body
// are invalid afterwards.
func (d *ChunkedDecoder) Reset(lim ChunkLimits) {
	d.trail.Reset()
	*d = ChunkedDecoder{lim: lim, tbuf: d.tbuf[:0], trail: d.trail}
}

// Done reports whether the last chunk and the trailer section have been
// decoded.
func (d *ChunkedDecoder) Done() bool { return d.state == stDone }

// Trailer returns the trailer fields once Done. They alias a buffer owned
// by d, valid until the next Reset; copy them to keep them longer.
func (d *ChunkedDecoder) Trailer() *message.Header { return &d.trail }

// Decode decodes the next part of the body from p; see ChunkedDecoder for
// the contract.
func (d *ChunkedDecoder) Decode(p []byte) (data []byte, consumed int, err error) {
	if d.fault != fNone {
		return nil, 0, reqErr(d.fault)
	}
	i := 0
	for i < len(p) {
		switch d.state {
		case stData:
			n := len(p) - i
			if int64(n) >= d.remain {
				n = int(d.remain)
				d.state = stDataCR
			}
			d.remain -= int64(n)
			return p[i : i+n], i + n, nil
		case stTrailer:
			n, f := d.trailer(p[i:])
			i += n
			if f != fNone {
				d.fault = f
				return nil, i, reqErr(f)
			}
		case stDone:
			return nil, i, nil
		default:
			f := d.step(p[i])
			i++
			if f != fNone {
				d.fault = f
				return nil, i, reqErr(f)
			}
		}
	}
	if d.state == stDone {
		return nil, i, nil
	}
	return nil, i, ErrIncomplete
}

// step advances the line state machine by one byte.
func (d *ChunkedDecoder) step(c byte) fault {
	if d.state <= stSizeLF {
		d.line++
		if d.line > or(d.lim.MaxChunkLine, limits.MaxChunkLine) {
			return fChunkLineTooLong
		}
	}
	ws := c == ' ' || c == '\t'
	switch d.state {
	case stSize, stSizeDigits:
		// RFC 9112 7.1: chunk-size = 1*HEXDIG; no sign, prefix or
		// leading whitespace.
		if v := unhex[c]; v >= 0 {
			if d.digits++; d.digits > maxChunkDigits {
				return fChunkSizeTooLarge
			}
			d.remain = d.remain<<4 | int64(v)
			d.state = stSizeDigits
			return fNone
		}
		if d.state == stSize {
			return fChunkSize
		}
		return d.sizeEnd(c, ws, stSizeBWS)
	// RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
	// [ BWS "=" BWS chunk-ext-val ] ). Extensions are checked and dropped.
	case stSizeBWS, stExtPostValue:
		switch {
		case ws:
		case c == ';':
			d.state = stExtPreName
		default:
			return fChunkExt
		}
	case stExtPreName:
		switch {
		case ws:
		case tchar[c]:
			d.state = stExtName
		default:
			return fChunkExt
		}
	case stExtName:
		if tchar[c] {
			return fNone
		}
		if c == '=' {
			d.state = stExtPreValue
			return fNone
		}
		return d.sizeEnd(c, ws, stExtPostName)
	case stExtPostName:
		switch {
		case ws:
		case c == '=':
			d.state = stExtPreValue
		case c == ';':
			d.state = stExtPreName
		default:
			return fChunkExt
		}
	case stExtPreValue:
		switch {
		case ws:
		case tchar[c]:
			d.state = stExtToken
		case c == '"':
			d.state = stExtQuoted
		default:
			return fChunkExt
		}
	case stExtToken, stExtQuotedEnd:
		if d.state == stExtToken && tchar[c] {
			return fNone
		}
		return d.sizeEnd(c, ws, stExtPostValue)
	case stExtQuoted:
		switch {
		case c == '"':
			d.state = stExtQuotedEnd
		case c == '\\':
			d.state = stExtQuotedEsc
		case !qdText[c]:
			return fChunkExt
		}
	case stExtQuotedEsc:
		// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
		if !fieldVChar[c] {
			return fChunkExt
		}
		d.state = stExtQuoted
	case stSizeLF:
		if c != '\n' {
			return fBareCR
		}
		if d.remain > 0 {
			d.state = stData
		} else {
			d.state = stTrailer
		}
	case stDataCR:
		if c != '\r' {
			return fChunkEnd
		}
		d.state = stDataLF
	case stDataLF:
		if c != '\n' {
			return fChunkEnd
		}
		d.state, d.line, d.digits, d.remain = stSize, 0, 0, 0
	}
	return fNone
}

// sizeEnd handles a byte that ends a size, name or token value: ';' starts
// another extension, CR ends the line, whitespace moves to bws (where only
// what the grammar allows after BWS may follow).
func (d *ChunkedDecoder) sizeEnd(c byte, ws bool, bws uint8) fault {
	switch {
	case c == ';':
		d.state = stExtPreName
	case c == '\r':
		d.state = stSizeLF
	case ws:
		d.state = bws
	case c == '\n':
		return fBareLF
	default:
		if bws == stSizeBWS {
			return fChunkSize
		}
		return fChunkExt
	}
	return fNone
}

// trailer copies trailer-section bytes from p into d.tbuf until the empty
// line that ends the section, then parses the fields. It returns how many
// bytes of p it used.
func (d *ChunkedDecoder) trailer(p []byte) (int, fault) {
	maxBytes := or(d.lim.MaxTrailerBytes, limits.MaxTrailerBytes)
	maxFields := or(d.lim.MaxTrailerFields, limits.MaxHeaderFields)
	n := 0
	for n < len(p) {
		j := bytes.IndexByte(p[n:], '\n')
		end := len(p)
		if j >= 0 {
			end = n + j + 1
		}
		if len(d.tbuf)+end-n > maxBytes {
			return end, fTrailerTooLarge
		}
		d.tbuf = append(d.tbuf, p[n:end]...)
		n = end
		if j < 0 {
			break
		}
		line := d.tbuf[d.tline:]
		// RFC 9112 7.1.2: the trailer section is field lines, each ending
		// in CRLF, then an empty line.
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return n, fBareLF
		}
		if len(line) > 2 {
			d.tline = len(d.tbuf)
			continue
		}
		d.trail.Reset()
		if _, f := parseFields(d.tbuf, 0, maxFields, &d.trail); f != fNone {
			if f == fTooManyFields {
				f = fTooManyTrailers
			}
			return n, f
		}
		// RFC 9110 6.5.1: framing and routing fields must not be sent as
		// trailers. A recipient that merges trailers into the header
		// section (as some origins do) would read a Transfer-Encoding,
		// Content-Length or Host here as if it framed or routed the
		// message: a trailer-based desync. Such a body is rejected.
		for _, tf := range d.trail.Fields {
			if message.EqualFold(tf.Name, "Transfer-Encoding") || message.EqualFold(tf.Name, "Content-Length") ||
				message.EqualFold(tf.Name, "Host") {
				return n, fTrailerField
			}
		}
		d.state = stDone
		break
	}
	return n, fNone
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
