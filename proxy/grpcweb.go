package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"

	"github.com/weirproxy/weir/message"
)

// gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md)
// is gRPC that browsers can send: over HTTP/1.1 or HTTP/2, without
// HTTP trailers. Weir translates it on routes with GRPCWeb set:
//
//	request   application/grpc-web[+proto]       → application/grpc[+proto]
//	          application/grpc-web-text[+proto]  → the same, body base64-decoded
//	response  application/grpc[+proto]           → the client's gRPC-Web type
//	          trailers                            → a final frame with flag 0x80
//	                                                holding "name: value\r\n" lines
//	          -text mode                          → the whole body base64-encoded

const grpcWebType = "application/grpc-web"

// isGRPCWeb reports a gRPC-Web request and whether it is the text mode.
func isGRPCWeb(req *message.Request) (text, ok bool) {
	ct := req.Header.Get("Content-Type")
	if len(ct) < len(grpcWebType) || !message.EqualFold(ct[:len(grpcWebType)], grpcWebType) {
		return false, false
	}
	rest := ct[len(grpcWebType):]
	switch {
	case len(rest) == 0 || rest[0] == '+' || rest[0] == ';':
		return false, true
	case len(rest) >= 5 && message.EqualFold(rest[:5], "-text"):
		return true, true
	}
	return false, false
}

// toGRPCRequest rewrites the upstream head of a gRPC-Web request into a
// gRPC one.
func toGRPCRequest(ur *message.Request, text bool) {
	ct := ur.Header.Get("Content-Type")
	suffix := ct[len(grpcWebType):]
	if text {
		suffix = suffix[5:]
		// Base64 changes the length; the peer gets the decoded body.
		ur.Header.Del("Content-Length")
		ur.ContentLength = -1
	}
	v := make([]byte, 0, len("application/grpc")+len(suffix))
	v = append(v, "application/grpc"...)
	v = append(v, suffix...)
	ur.Header.Set("Content-Type", v)
	ur.Header.Del("TE")
	ur.Header.AddString("TE", "trailers")
}

// grpcWebDown translates between a gRPC-Web client and a gRPC peer.
type grpcWebDown struct {
	downstream
	text bool
	req  *message.Request

	pend []byte // text mode: base64 characters not decoded yet
	dec  []byte // text mode: decoded bytes not yet returned
	deof bool   // text mode: the client's body ended
	tmp  []byte

	carry []byte // text mode: up to 2 response bytes awaiting encoding
	enc   []byte
}

func newGRPCWebDown(ds downstream, text bool, req *message.Request) *grpcWebDown {
	return &grpcWebDown{downstream: ds, text: text, req: req}
}

var errGRPCWebText = errors.New("grpc-web-text body is not valid base64")

func (d *grpcWebDown) readBody(p []byte) (int, error) {
	if !d.text {
		return d.downstream.readBody(p)
	}
	for {
		if len(d.dec) > 0 {
			n := copy(p, d.dec)
			d.dec = d.dec[n:]
			return n, nil
		}
		if d.deof {
			if len(d.pend) > 0 {
				return 0, errGRPCWebText
			}
			return 0, io.EOF
		}
		if d.tmp == nil {
			d.tmp = make([]byte, 16<<10)
		}
		n, err := d.downstream.readBody(d.tmp)
		for _, ch := range d.tmp[:n] {
			if ch != '\r' && ch != '\n' && ch != ' ' && ch != '\t' {
				d.pend = append(d.pend, ch)
			}
		}
		if err == io.EOF {
			d.deof = true
		} else if err != nil {
			return 0, err
		}
		// Decode whole 4-character quanta one by one: clients may send
		// several padded base64 pieces back to back.
		q := len(d.pend) / 4 * 4
		out := d.dec[:0]
		for i := 0; i < q; i += 4 {
			var b [3]byte
			m, err := base64.StdEncoding.Decode(b[:], d.pend[i:i+4])
			if err != nil {
				return 0, errGRPCWebText
			}
			out = append(out, b[:m]...)
		}
		d.dec = out
		d.pend = append(d.pend[:0], d.pend[q:]...)
	}
}

func (d *grpcWebDown) writeHead(s *Session, resp *message.Response, length int64) error {
	if ct := resp.Header.Get("Content-Type"); len(ct) >= len("application/grpc") &&
		message.EqualFold(ct[:len("application/grpc")], "application/grpc") {
		suffix := ct[len("application/grpc"):]
		v := []byte(grpcWebType)
		if d.text {
			v = append(v, "-text"...)
		}
		v = append(v, suffix...)
		resp.Header.Set("Content-Type", v)
	}
	resp.Header.Del("Content-Length")
	return d.downstream.writeHead(s, resp, -1)
}

func (d *grpcWebDown) writeBody(p []byte) error {
	if !d.text {
		return d.downstream.writeBody(p)
	}
	d.carry = append(d.carry, p...)
	n := len(d.carry) / 3 * 3
	if n == 0 {
		return nil
	}
	d.enc = base64.StdEncoding.AppendEncode(d.enc[:0], d.carry[:n])
	d.carry = append(d.carry[:0], d.carry[n:]...)
	return d.downstream.writeBody(d.enc)
}

func (d *grpcWebDown) finish(trailer *message.Header) error {
	if trailer != nil && trailer.Len() > 0 {
		var b bytes.Buffer
		for _, f := range trailer.Fields {
			b.Write(bytes.ToLower(f.Name))
			b.WriteString(": ")
			b.Write(f.Value)
			b.WriteString("\r\n")
		}
		frame := make([]byte, 5, 5+b.Len())
		frame[0] = 0x80
		l := b.Len()
		frame[1], frame[2], frame[3], frame[4] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		frame = append(frame, b.Bytes()...)
		if d.text {
			// The trailer frame is its own padded base64 piece.
			if err := d.flushText(); err != nil {
				return err
			}
			if err := d.downstream.writeBody(base64.StdEncoding.AppendEncode(nil, frame)); err != nil {
				return err
			}
		} else if err := d.downstream.writeBody(frame); err != nil {
			return err
		}
	}
	if err := d.flushText(); err != nil {
		return err
	}
	return d.downstream.finish(nil)
}

func (d *grpcWebDown) flushText() error {
	if !d.text || len(d.carry) == 0 {
		return nil
	}
	d.enc = base64.StdEncoding.AppendEncode(d.enc[:0], d.carry)
	d.carry = d.carry[:0]
	return d.downstream.writeBody(d.enc)
}
