// Package http1 is Weir's HTTP/1.1 codec: a zero-copy parser for request
// and response heads, a chunked-body decoder and encoder, and head writers.
// It is strict by design (RFC 9112): ambiguous framing is rejected, never
// repaired, so that Weir cannot be used to smuggle a request past itself or
// past the server behind it. It does not import net/http.
package http1

import (
	"errors"

	"github.com/weirproxy/weir/limits"
)

// Limits bounds what the parser accepts. Zero fields take the defaults in
// package limits.
type Limits struct {
	MaxRequestLine  int // longer request line: 414
	MaxHeaderBytes  int // larger head (request line included): 431
	MaxHeaderFields int // more fields: 431
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestLine:  limits.MaxRequestLine,
		MaxHeaderBytes:  limits.MaxHeaderBytes,
		MaxHeaderFields: limits.MaxHeaderFields,
	}
}

// Error is a protocol violation together with the status a server should
// answer it with before closing the connection.
type Error struct {
	Status int    // 400, 414, 431, 501 or 505 (for responses: 502)
	Reason string // short, safe to show to the client
}

func (e *Error) Error() string { return "http1: " + e.Reason }

// ErrIncomplete means the buffer does not yet hold a complete head (or
// chunk line): read more bytes and call again.
var ErrIncomplete = errors.New("http1: incomplete")
