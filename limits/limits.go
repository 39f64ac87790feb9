// Package limits is the one table of every limit and timeout Weir enforces,
// with its default. Each constant names the config key that overrides it;
// docs/limits.md explains each one and compares it with nginx, HAProxy and
// Envoy. Other packages take their defaults from here and nowhere else.
package limits

import "time"

// Client side: what one downstream connection and its requests may use.
const (
	// MaxRequestLine bounds the request line (method, target, version).
	// Longer lines are answered with 414. Key: limits.max_request_line.
	// nginx: large_client_header_buffers 8k.
	MaxRequestLine = 8 << 10

	// MaxHeaderBytes bounds the whole request head, request line included.
	// Larger heads are answered with 431. Key: limits.max_header_bytes.
	MaxHeaderBytes = 64 << 10

	// MaxHeaderFields bounds the number of header fields in one head.
	// More are answered with 431. Key: limits.max_header_fields.
	MaxHeaderFields = 100

	// HeaderReadTimeout is how long a client has to send a complete request
	// head, measured from its first byte (or from the end of the previous
	// response on a kept-alive connection once a byte arrives). Slow heads
	// are closed with 408. Key: limits.header_read_timeout.
	HeaderReadTimeout = 10 * time.Second

	// IdleTimeout is how long a kept-alive client connection may sit with no
	// request before Weir closes it. Key: limits.idle_timeout.
	IdleTimeout = 60 * time.Second

	// BodyReadTimeout is the longest gap allowed between two reads of a
	// request body. Key: limits.body_read_timeout.
	BodyReadTimeout = 60 * time.Second

	// WriteTimeout is the longest a single write to the client may block.
	// Key: limits.write_timeout.
	WriteTimeout = 60 * time.Second

	// LingerTime and LingerTimeout bound the lingering close: after Weir
	// answers a request whose body it did not read to the end (a refusal,
	// an error) and closes, it first shuts its sending side, then reads
	// and discards what the client still sends, for at most LingerTime in
	// all and until a gap of LingerTimeout, so that the client reads the
	// answer instead of a reset. Fixed; nginx: lingering_time 30s,
	// lingering_timeout 5s.
	LingerTime    = 30 * time.Second
	LingerTimeout = 5 * time.Second

	// MaxRequestsPerConn is how many requests one client connection may
	// carry before Weir closes it after the response. Key:
	// limits.max_requests_per_conn. nginx: keepalive_requests 1000.
	MaxRequestsPerConn = 1000

	// MaxBodyBytes bounds a request body; 0 means no limit. Weir streams
	// bodies and never buffers a whole one, so the default is no limit,
	// like HAProxy and Envoy. Larger bodies get 413. Key:
	// limits.max_body_bytes.
	MaxBodyBytes = 0

	// MaxChunkLine bounds one chunk-size line of a chunked body, extensions
	// included. Key: limits.max_chunk_line.
	MaxChunkLine = 4 << 10

	// MaxTrailerBytes bounds the trailer section of a chunked body.
	// Key: limits.max_trailer_bytes.
	MaxTrailerBytes = 16 << 10

	// MaxConnections bounds concurrent client connections per listener;
	// further connections wait in the kernel backlog. 0 means no limit.
	// Key: limits.max_connections.
	MaxConnections = 0

	// ShutdownGrace is how long a draining Weir waits for in-flight
	// requests after SIGTERM before it closes what remains. Key:
	// shutdown_grace.
	ShutdownGrace = 30 * time.Second
)

// Upstream side: what Weir allows itself toward origins.
const (
	// ConnectTimeout bounds one TCP connect to a peer.
	// Key: upstreams.NAME.timeouts.connect. Envoy: 5s.
	ConnectTimeout = 5 * time.Second

	// ResponseHeaderTimeout bounds the wait for a peer's response head
	// after the request was written. Answered with 504.
	// Key: upstreams.NAME.timeouts.response_header. nginx: proxy_read_timeout 60s.
	ResponseHeaderTimeout = 60 * time.Second

	// UpstreamIdleTimeout is the longest gap allowed between two reads or
	// writes on a peer connection while a response body streams.
	// Key: upstreams.NAME.timeouts.idle.
	UpstreamIdleTimeout = 60 * time.Second

	// RequestTimeout bounds a whole exchange from the first byte of the
	// request to the last byte of the response; 0 means no limit.
	// Key: upstreams.NAME.timeouts.request.
	RequestTimeout = 0

	// PoolMaxIdlePerPeer is how many idle keep-alive connections Weir keeps
	// to one peer. It should cover the peer's share of concurrent
	// requests: below that, connections are closed and dialed again under
	// load. Key: upstreams.NAME.keepalive.max_idle.
	PoolMaxIdlePerPeer = 1024

	// PoolMaxPerPeer bounds all connections (busy and idle) to one peer;
	// 0 means no limit. Requests beyond it get 503.
	// Key: upstreams.NAME.keepalive.max_per_peer.
	PoolMaxPerPeer = 0

	// PoolIdleTimeout is how long an idle upstream connection is kept.
	// Key: upstreams.NAME.keepalive.idle_timeout.
	PoolIdleTimeout = 60 * time.Second

	// MaxRetries is how many further peers Weir tries after a connect
	// failure (or, for idempotent requests, a reset before any response
	// byte). Key: upstreams.NAME.retries.
	MaxRetries = 2

	// MaxResponseHeaderBytes bounds a response head from a peer; larger
	// heads are a 502. Key: upstreams.NAME.max_response_header_bytes.
	MaxResponseHeaderBytes = 64 << 10

	// MaxResponseHeaderFields bounds the header fields of a response head.
	MaxResponseHeaderFields = 100
)

// Health checking.
const (
	HealthInterval = 5 * time.Second // upstreams.NAME.health_check.interval
	HealthTimeout  = 2 * time.Second // upstreams.NAME.health_check.timeout
	HealthRise     = 2               // consecutive passes to mark a peer up
	HealthFall     = 3               // consecutive failures to mark it down

	// PassiveMaxFails consecutive failed exchanges eject a peer for
	// PassiveEjectFor. Keys: upstreams.NAME.passive_health.max_fails,
	// .eject_for. nginx: max_fails=1 fail_timeout=10s.
	PassiveMaxFails = 3
	PassiveEjectFor = 10 * time.Second
)

// HTTP/2 toward clients (per listener; keys under listeners[].http2).
const (
	// H2MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: streams
	// one client connection may have open. nginx: 128, Envoy: 100.
	// Key: listeners[].http2.max_concurrent_streams.
	H2MaxConcurrentStreams = 128

	// H2StreamWindow and H2ConnWindow are the flow-control windows Weir
	// grants a client for request bodies, per stream and per connection.
	// Keys: listeners[].http2.stream_window, .connection_window.
	H2StreamWindow = 1 << 20
	H2ConnWindow   = 4 << 20

	// H2MaxFrameSize is SETTINGS_MAX_FRAME_SIZE: the largest frame Weir
	// reads (16 KiB is the protocol's initial value; nginx and HAProxy
	// keep it). Key: listeners[].http2.max_frame_size.
	H2MaxFrameSize = 16 << 10

	// H2GlitchBudget and H2GlitchRate form the flood budget of one
	// connection: suspicious frames (RST_STREAM, PING, SETTINGS,
	// PRIORITY, CONTINUATION, empty DATA) cost 1 point, protocol errors
	// 10, an oversized header list 100; points refill at H2GlitchRate
	// per second up to H2GlitchBudget; at zero the connection gets
	// GOAWAY ENHANCE_YOUR_CALM. Keys: listeners[].http2.glitch_budget,
	// .glitch_rate. HAProxy: tune.h2.fe.glitches-threshold.
	H2GlitchBudget = 1000
	H2GlitchRate   = 100
)
