package proxy

import (
	"net/netip"
	"time"

	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/upstream"
)

// Session is one request/response exchange as it moves through the
// phases. The engine reuses a Session for the requests of one connection;
// hooks must not keep it after the request ends.
type Session struct {
	// Req is the client's request head as parsed. Filters may change it
	// in RequestFilter (for example rewrite Path before routing).
	Req message.Request
	// UpstreamReq is the head sent to the upstream, built from Req.
	UpstreamReq message.Request
	// Resp is the response head: from the upstream, or the local one.
	Resp message.Response

	// Client is the client's address; Local is the address it reached.
	Client, Local netip.AddrPort
	// TLS reports whether the client connection is TLS.
	TLS bool
	// TLSInfo describes the client's TLS session (nil without TLS).
	TLSInfo *TLSInfo

	// Route is the route the request matched (nil before routing).
	Route *Route
	// Peer is the upstream peer of the last attempt (nil if none).
	Peer *upstream.Peer
	// Attempts counts upstream attempts (1 without retries).
	Attempts int
	// Reused reports whether the last upstream connection was pooled.
	Reused bool

	// Start is when the request head was complete.
	Start time.Time
	// UpstreamHeadAt is when the upstream response head arrived (zero if
	// it never did).
	UpstreamHeadAt time.Time
	// End is when the response was finished (set before Logger runs).
	End time.Time

	// Status is the status sent to the client (0 if nothing was sent).
	Status int
	// BytesIn and BytesOut count request and response body bytes.
	BytesIn, BytesOut int64
	// Err is the error that ended the exchange, if any, prefixed with
	// its phase and peer ("upstream 10.0.0.7:8080: connect: refused").
	Err error

	values    []kv
	responded bool
	scratch   []byte
	conn      *conn
	ds        downstream // the general path's client side, if any
}

// TLSInfo describes a client's TLS connection. It is shared by all the
// requests of the connection and must not be changed.
type TLSInfo struct {
	Version     uint16 // tls.VersionTLS12, tls.VersionTLS13
	CipherSuite uint16
	// ServerName is the SNI name the client asked for ("" if none).
	ServerName string
	// ALPN is the protocol agreed ("h2", "http/1.1", or "").
	ALPN string
	// ClientCertSubject is the subject of a verified client
	// certificate (mTLS), or "".
	ClientCertSubject string
	// JA3 and JA4 fingerprint the client's ClientHello ("" when
	// fingerprinting is off).
	JA3, JA4 string
}

type kv struct {
	k, v any
}

func (s *Session) reset() {
	s.Req.Reset()
	s.UpstreamReq.Reset()
	s.Resp.Reset()
	clear(s.values)
	*s = Session{
		Req: s.Req, UpstreamReq: s.UpstreamReq, Resp: s.Resp,
		Client: s.Client, Local: s.Local, TLS: s.TLS, TLSInfo: s.TLSInfo,
		values: s.values[:0], scratch: s.scratch[:0], conn: s.conn, ds: s.ds,
	}
}

// SetValue stores a per-request value for later phases, like a context
// value. Keys should be unexported types of the filter's own package.
func (s *Session) SetValue(key, val any) {
	for i := range s.values {
		if s.values[i].k == key {
			s.values[i].v = val
			return
		}
	}
	s.values = append(s.values, kv{key, val})
}

// Value returns what SetValue stored under key, or nil.
func (s *Session) Value(key any) any {
	for i := range s.values {
		if s.values[i].k == key {
			return s.values[i].v
		}
	}
	return nil
}

// Responded reports whether the response was already produced locally.
func (s *Session) Responded() bool { return s.responded }

// Respond answers the request from Weir itself, skipping the upstream. It
// is meant for RequestFilter hooks. header may be nil. The fields of header
// are sent after Weir's own Content-Length.
func (s *Session) Respond(status int, header *message.Header, body []byte) error {
	s.responded = true
	if s.ds != nil {
		return writeLocalDown(s, s.ds, status, header, body)
	}
	return s.conn.writeLocal(s, status, header, body)
}

// Bytes copies b into per-request scratch storage valid until the request
// ends, for filters that build header values.
func (s *Session) Bytes(b ...[]byte) []byte {
	start := len(s.scratch)
	for _, p := range b {
		s.scratch = append(s.scratch, p...)
	}
	return s.scratch[start:len(s.scratch):len(s.scratch)]
}

// Duration returns how long the request took so far (or in all, once End
// is set).
func (s *Session) Duration() time.Duration {
	if s.End.IsZero() {
		return time.Since(s.Start)
	}
	return s.End.Sub(s.Start)
}
