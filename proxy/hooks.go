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
//	      ├─ write head, stream request body through RequestBodyFilter
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

// RequestBodyFilter sees each piece of the request body on its way to
// the upstream (route chain, then handler chain), with end set on the
// last call. It may read the bytes, change them in place, or wait (to
// pace an upload); it cannot add or remove bytes, so the body keeps the
// framing the client gave it (Content-Length or chunked) and cannot be
// made to smuggle a second request. An error ends the exchange: a
// *StatusError answers with its status, any other error with 500, and
// neither counts against the peer. A body of up to 8 KiB that arrived
// with its head is filtered once, before the first attempt, and sent as
// filtered on a retry; a Content-Length body of 16 KiB or more is not
// spliced when a request body filter is in the chain.
type RequestBodyFilter interface {
	RequestBodyFilter(s *Session, chunk []byte, end bool) error
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
	reqBody  []RequestBodyFilter
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
		if h, ok := f.(RequestBodyFilter); ok {
			c.reqBody, any = append(c.reqBody, h), true
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

func (c *Chain) hasReqBody() bool { return c != nil && len(c.reqBody) > 0 }

// filterRequestBody runs the request body filters of the route chain,
// then of the handler chain. An error comes back as a *StatusError (500
// for a filter's plain error), which the engine answers and does not hold
// against the peer.
func filterRequestBody(h *Handler, s *Session, chunk []byte, end bool) error {
	for _, c := range [2]*Chain{s.Route.Chain, h.Chain} {
		if c == nil {
			continue
		}
		for _, f := range c.reqBody {
			if err := f.RequestBodyFilter(s, chunk, end); err != nil {
				var se *StatusError
				if errors.As(err, &se) {
					return se
				}
				h.ErrorLog.Warn("request body filter failed", "client", s.Client, "err", err)
				return &StatusError{Status: 500}
			}
		}
	}
	return nil
}

// hasRequestBodyFilter reports whether a request body filter applies to
// s (its route chain or the handler chain has one).
func hasRequestBodyFilter(h *Handler, s *Session) bool {
	return s.Route.Chain.hasReqBody() || h.Chain.hasReqBody()
}

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
