package proxy

import (
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
)

// Weir's own answers to gRPC clients (no route, no peer, a peer that
// failed, a timeout) are gRPC responses, as Envoy sends them: a plain
// "502 Bad Gateway" page reaches a gRPC client as a transport error with
// the HTTP status in its text, while grpc-status and grpc-message reach
// it as the call's status. They are "trailers-only" responses (PROTOCOL-
// HTTP2.md): status 200 and one HEADERS frame that ends the stream.

// errGRPCDeadline is an exchange that ended after the gRPC request's own
// deadline (its grpc-timeout) had passed. A gRPC server resets the stream
// when the deadline expires (RST_STREAM CANCEL), and its client reports
// DEADLINE_EXCEEDED; Weir reports the same, and does not hold the reset
// against the peer.
var errGRPCDeadline = &StatusError{Status: 504, Msg: "the call's deadline (grpc-timeout) passed"}

// isGRPCRequest reports a gRPC call from an HTTP/2 or HTTP/3 client:
// content type application/grpc, alone or with a +suffix or parameters
// (not application/grpc-web, which grpcWebDown translates).
func isGRPCRequest(s *Session) bool {
	if s.Req.ProtoMajor < 2 {
		return false
	}
	ct := s.Req.Header.Get("Content-Type")
	const p = "application/grpc"
	if len(ct) < len(p) || !message.EqualFold(ct[:len(p)], p) {
		return false
	}
	return len(ct) == len(p) || ct[len(p)] == '+' || ct[len(p)] == ';'
}

// grpcTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n).
func grpcTimeout(v []byte) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// grpcDeadlinePassed reports whether a gRPC call's grpc-timeout, counted
// from when Weir read its head, has run out.
func grpcDeadlinePassed(s *Session) bool {
	d, ok := grpcTimeout(s.Req.Header.Get("Grpc-Timeout"))
	return ok && !time.Now().Before(s.Start.Add(d))
}

// grpcCode maps the HTTP status Weir would have answered to a gRPC
// status code, as gRPC's http-grpc-status-mapping.md does for clients,
// except that a timeout (504) is DEADLINE_EXCEEDED and 413 is
// RESOURCE_EXHAUSTED, which say more to a gRPC caller.
func grpcCode(status int) int {
	switch status {
	case 400:
		return 13 // INTERNAL
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404:
		return 12 // UNIMPLEMENTED
	case 408, 504:
		return 4 // DEADLINE_EXCEEDED
	case 413, 431:
		return 8 // RESOURCE_EXHAUSTED
	case 429, 502, 503:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// writeGRPCStatus answers a gRPC call with a trailers-only response
// carrying the status that the HTTP status maps to, and text as its
// grpc-message.
func writeGRPCStatus(s *Session, ds downstream, status int, text []byte) error {
	var hd message.Header
	hd.AddString("Content-Type", "application/grpc")
	hd.Add(message.S("Grpc-Status"), http1.AppendInt(nil, int64(grpcCode(status))))
	hd.Add(message.S("Grpc-Message"), appendGRPCMessage(nil, text))
	if err := writeLocalDown(s, ds, 200, &hd, nil); err != nil {
		return err
	}
	s.Status = status // logged as what happened, not as the 200 on the wire
	return nil
}

// appendGRPCMessage percent-encodes text as grpc-message wants: bytes
// outside printable ASCII, and '%', become %XX.
func appendGRPCMessage(b, text []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range text {
		if c < 0x20 || c > 0x7e || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}
