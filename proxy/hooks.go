package proxy

import (
	"errors"
	"fmt"

	"github.com/weirproxy/weir/message"
)

// The phases of one request, in order. Each is a small interface; a filter
// implements only the ones it needs, and the engine sorts filters into
// per-phase lists once, when a Chain is built, never per request.
//
//	accept
//	  └─ read request head (http1) ─ malformed? → 4xx, close
//	      ├─ RequestFilter      (handler chain)  may Respond or return an error
//	      ├─ route              (Router)         no match → 404
//	      ├─ RequestFilter      (route chain)
//	      ├─ build upstream request: hop-by-hop removed, X-Forwarded-*, Via, Host
//	      ├─ UpstreamRequestFilter (route chain, then handler chain)
//	      ├─ pick peer (balancer) → pooled conn or dial ─ retry on another peer
//	      ├─ write head, stream request body
//	      ├─ read response head ─ timeout → 504, bad → 502
//	      ├─ ResponseFilter     (route chain, then handler chain)
//	      ├─ write head, stream response body through ResponseBodyFilter
//	      └─ Logger             (route chain, then handler chain), always
//	  └─ keep-alive: next request on the same connection
//
// A hook that returns an error ends the request: a *StatusError answers with
// its status, any other error with 500. Parsed heads alias connection
// buffers: a hook must copy any bytes it wants to keep after it returns.

// RequestFilter sees the client's request head before it is routed (in the
// handler chain) or after (in a route's chain). It may change the head, or
// answer the request itself with Session.Respond.
type RequestFilter interface {
	RequestFilter(s *Session) error
}

// UpstreamRequestFilter sees the head about to be sent to the upstream,
// after Weir's own proxy headers were added.
type UpstreamRequestFilter interface {
	UpstreamRequestFilter(s *Session, req *message.Request) error
}

// ResponseFilter sees the response head from the upstream before it is
// sent to the client.
type ResponseFilter interface {
	ResponseFilter(s *Session, resp *message.Response) error
}

// ResponseBodyFilter sees each piece of the response body as it streams;
// end is true for the last call (chunk may then be empty). It returns the
// bytes to send instead. A chain with body filters sends bodies chunked to
// HTTP/1.1 clients, since the length may change.
type ResponseBodyFilter interface {
	ResponseBodyFilter(s *Session, chunk []byte, end bool) ([]byte, error)
}

// Logger runs once per request after the response ended, successful or not.
type Logger interface {
	Log(s *Session)
}

// StatusError ends a request with an HTTP status. Msg is sent as the body
// and must not leak internals.
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Msg) }

// Reject returns a *StatusError for filters to return.
func Reject(status int, msg string) error { return &StatusError{Status: status, Msg: msg} }

// Chain is a compiled list of filters, sorted by phase.
type Chain struct {
	request  []RequestFilter
	upstream []UpstreamRequestFilter
	response []ResponseFilter
	body     []ResponseBodyFilter
	log      []Logger
}

// ErrNotAFilter is returned by NewChain for a value that implements no hook.
var ErrNotAFilter = errors.New("proxy: value implements no filter hook")

// NewChain sorts filters into phases. Each filter must implement at least
// one hook interface.
func NewChain(filters ...any) (*Chain, error) {
	c := &Chain{}
	for _, f := range filters {
		any := false
		if h, ok := f.(RequestFilter); ok {
			c.request, any = append(c.request, h), true
		}
		if h, ok := f.(UpstreamRequestFilter); ok {
			c.upstream, any = append(c.upstream, h), true
		}
		if h, ok := f.(ResponseFilter); ok {
			c.response, any = append(c.response, h), true
		}
		if h, ok := f.(ResponseBodyFilter); ok {
			c.body, any = append(c.body, h), true
		}
		if h, ok := f.(Logger); ok {
			c.log, any = append(c.log, h), true
		}
		if !any {
			return nil, fmt.Errorf("%w: %T", ErrNotAFilter, f)
		}
	}
	return c, nil
}

// MustChain is NewChain that panics on error, for static setups.
func MustChain(filters ...any) *Chain {
	c, err := NewChain(filters...)
	if err != nil {
		panic(err)
	}
	return c
}

func (c *Chain) runRequest(s *Session) error {
	if c == nil {
		return nil
	}
	for _, f := range c.request {
		if err := f.RequestFilter(s); err != nil || s.responded {
			return err
		}
	}
	return nil
}

func (c *Chain) runUpstream(s *Session, req *message.Request) error {
	if c == nil {
		return nil
	}
	for _, f := range c.upstream {
		if err := f.UpstreamRequestFilter(s, req); err != nil {
			return err
		}
	}
	return nil
}

func (c *Chain) runResponse(s *Session, resp *message.Response) error {
	if c == nil {
		return nil
	}
	for _, f := range c.response {
		if err := f.ResponseFilter(s, resp); err != nil {
			return err
		}
	}
	return nil
}

func (c *Chain) runBody(s *Session, chunk []byte, end bool) ([]byte, error) {
	if c == nil {
		return chunk, nil
	}
	var err error
	for _, f := range c.body {
		if chunk, err = f.ResponseBodyFilter(s, chunk, end); err != nil {
			return nil, err
		}
	}
	return chunk, nil
}

func (c *Chain) runLog(s *Session) {
	if c == nil {
		return
	}
	for _, f := range c.log {
		f.Log(s)
	}
}

func (c *Chain) hasBody() bool { return c != nil && len(c.body) > 0 }

// ErrorPhase names where an error in Session.Err came from, for metrics
// and logs: "connect", "write request", "write body", "read response",
// "read body" or "exchange" for a peer's failure; "client" for the
// client's side (a reset, a timeout while its body arrived); "" for
// anything else (a filter's error, a bad request head, no route).
func ErrorPhase(err error) string {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue.Phase
	}
	var ce *ClientError
	if errors.As(err, &ce) {
		return "client"
	}
	return ""
}
