package tlsfp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// PeekBufferSize is the bufio.Reader size Peek needs to hold any
// ClientHello it accepts when the client sends it in full-size records:
// MaxHandshakeSize plus the handshake header and two record headers. A
// hello split into many small records needs more.
const PeekBufferSize = MaxHandshakeSize + HandshakeHeaderSize + 2*RecordHeaderSize

// ParseClientHello parses the ClientHello at the start of a TLS stream:
// stream holds the bytes as the client sent them, one or more handshake
// records (content type 22) that together carry the ClientHello message.
// Bytes after the end of the message are ignored. The result does not
// refer to stream.
//
// It returns ErrIncomplete if stream is a valid prefix that ends before
// the message does (call again with more bytes, or use a Parser to avoid
// parsing the prefix twice), ErrNotTLS if the stream does not start like
// TLS, ErrTooLarge past MaxHandshakeSize, and an error wrapping
// ErrMalformed for anything else that is wrong.
func ParseClientHello(stream []byte) (*ClientHello, error) {
	var p Parser
	return p.Feed(stream)
}

// Parser reassembles the ClientHello from the first bytes of a TLS stream
// fed to it in pieces of any size, and parses it once it is complete. It
// keeps the 5-byte record header in progress and the handshake message
// (at most MaxHandshakeSize bytes, allocated once its header says how
// long it is), never the record framing, and it releases the message once
// parsed. The zero value is ready to use. A Parser is not safe for
// concurrent use.
type Parser struct {
	hdr   [RecordHeaderSize]byte    // record header being read
	hdrN  int                       // bytes of hdr read
	left  int                       // payload bytes left in the current record
	recs  int                       // records started
	hsHdr [HandshakeHeaderSize]byte // handshake header being read
	hsN   int                       // bytes of hsHdr read
	want  int                       // handshake body length, once hsN == HandshakeHeaderSize
	msg   []byte                    // handshake body read so far
	hello *ClientHello              // result, once done
	err   error                     // final error, once done
	done  bool
}

// Feed hands the parser the next bytes of the stream. It returns the
// ClientHello once the message is complete, ErrIncomplete while more
// bytes are needed, or the error that ended parsing. After a result other
// than ErrIncomplete, Feed ignores its argument and returns the same
// result again.
func (p *Parser) Feed(b []byte) (*ClientHello, error) {
	for !p.done && len(b) > 0 {
		if p.left == 0 {
			b = p.readRecordHeader(b)
			continue
		}
		k := min(p.left, len(b))
		p.left -= k
		p.readHandshake(b[:k])
		b = b[k:]
	}
	if !p.done {
		return nil, ErrIncomplete
	}
	return p.hello, p.err
}

func (p *Parser) finish(h *ClientHello, err error) {
	p.hello, p.err, p.done = h, err, true
	p.msg = nil
}

// readRecordHeader consumes record header bytes from b, checking each as
// it arrives so that a stream that is not TLS is rejected at its first
// byte.
func (p *Parser) readRecordHeader(b []byte) []byte {
	k := copy(p.hdr[p.hdrN:], b)
	from := p.hdrN
	p.hdrN += k
	first := p.recs == 0
	if from == 0 && p.hdr[0] != recordTypeHandshake {
		// Nothing but handshake records may carry the ClientHello: a
		// ChangeCipherSpec or alert in the middle is a protocol error.
		if first {
			p.finish(nil, ErrNotTLS)
		} else {
			p.finish(nil, malformed("record type"))
		}
		return nil
	}
	if from <= 1 && p.hdrN > 1 && p.hdr[1] != 3 {
		if first {
			p.finish(nil, ErrNotTLS)
		} else {
			p.finish(nil, malformed("record version"))
		}
		return nil
	}
	if p.hdrN < RecordHeaderSize {
		return b[k:]
	}
	n := int(p.hdr[3])<<8 | int(p.hdr[4])
	switch {
	case n == 0:
		// RFC 8446 5.1: handshake records are never empty.
		p.finish(nil, malformed("empty record"))
		return nil
	case n > MaxRecordSize:
		p.finish(nil, malformed("record length"))
		return nil
	}
	p.hdrN = 0
	p.left = n
	p.recs++
	return b[k:]
}

// readHandshake consumes record payload bytes.
func (p *Parser) readHandshake(b []byte) {
	if p.hsN < HandshakeHeaderSize {
		k := copy(p.hsHdr[p.hsN:], b)
		p.hsN += k
		b = b[k:]
		if p.hsHdr[0] != handshakeClientHello {
			p.finish(nil, ErrNotTLS)
			return
		}
		if p.hsN < HandshakeHeaderSize {
			return
		}
		p.want = int(p.hsHdr[1])<<16 | int(p.hsHdr[2])<<8 | int(p.hsHdr[3])
		if p.want > MaxHandshakeSize {
			p.finish(nil, ErrTooLarge)
			return
		}
		p.msg = make([]byte, 0, p.want)
	}
	k := min(len(b), p.want-len(p.msg))
	p.msg = append(p.msg, b[:k]...)
	if len(p.msg) == p.want {
		p.finish(parseBody(p.msg))
	}
}

// Peek parses the ClientHello at the start of r without consuming any of
// it: the bytes stay buffered for whoever reads r next (crypto/tls, or a
// raw TCP relay chosen by SNI). It parses what is buffered and reads more
// only while the hello is incomplete, so it returns as soon as the first
// byte shows the stream is not TLS (ErrNotTLS).
//
// The whole hello must fit in r's buffer: create r with
// bufio.NewReaderSize(conn, PeekBufferSize). A hello that does not fit is
// reported with an error wrapping bufio.ErrBufferFull. A read error before
// the hello is complete is returned as is, with io.EOF turned into
// io.ErrUnexpectedEOF once some bytes were read. Bound the wait with a
// read deadline on the connection.
func Peek(r *bufio.Reader) (*ClientHello, error) {
	var p Parser
	off := 0
	for {
		// Take what is buffered, or wait for one more read.
		buf, err := r.Peek(max(off+1, r.Buffered()))
		if len(buf) > off {
			h, perr := p.Feed(buf[off:])
			off = len(buf)
			if perr != ErrIncomplete {
				return h, perr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("tlsfp: ClientHello does not fit in the reader's %d-byte buffer: %w", r.Size(), err)
		case err == io.EOF && off > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
