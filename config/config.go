// Package config loads and validates Weir's YAML configuration.
//
// Load reads a file and Parse checks its bytes, reading also the
// certificate, key and CA files the configuration names (relative paths
// are taken from the configuration file's directory). Either returns a
// *Config in which every setting that has a default is filled in (the
// defaults live in package limits), or an ErrorList naming every problem
// found, each with the file, line and column of the offending YAML node:
//
//	weir.yaml:7:14: invalid duration "5 seconds" for timeouts.connect: use Go syntax like 5s or 1m30s
//	weir.yaml:12:15: route "api" sends to upstream "apii", which is not defined; did you mean "api"?
//
// docs/config.md documents every key. The comments on the fields below are
// the same documentation in brief, and name the YAML key of each field.
package config

import "time"

// Config is a whole, validated Weir configuration.
type Config struct {
	// Listeners are the addresses Weir accepts client connections on
	// (key listeners). At least one is required, unless ForwardProxies
	// has one. Every listener serves every route.
	Listeners []Listener

	// Routes are tried in file order; the first whose match conditions
	// all hold handles the request (key routes). A request no route
	// matches is answered with 404.
	Routes []Route

	// ForwardProxies are the forward proxies Weir runs next to the
	// listeners (key forward_proxies). A configuration needs at least
	// one listener or one forward proxy.
	ForwardProxies []ForwardProxy

	// Upstreams are the named groups of peers that routes send requests
	// to, keyed by name (key upstreams, a mapping from name to upstream).
	Upstreams map[string]*Upstream

	// UpstreamOrder lists the keys of Upstreams in the order they appear
	// in the file.
	UpstreamOrder []string

	// Limits bounds what one client connection and its requests may use
	// (key limits).
	Limits Limits

	// Proxy controls the headers Weir adds to proxied requests (key proxy).
	Proxy Proxy

	// Log configures Weir's own log and the access log (key log).
	Log Log

	// Metrics serves Prometheus metrics on a port of their own (key
	// metrics); nil when the key is absent, which turns them off.
	Metrics *Metrics

	// ShutdownGrace is how long a draining Weir waits for in-flight
	// requests after SIGTERM before it closes what remains (key
	// shutdown_grace; default limits.ShutdownGrace; 0 closes at once).
	ShutdownGrace time.Duration
}

// Listener is one address Weir accepts client connections on.
type Listener struct {
	// Name identifies the listener in logs (key name; default
	// "listener-N", N counting from 1 in file order). Names are unique.
	Name string

	// Address is "host:port" (key address, required). The host may be
	// empty (":8080") to listen on every interface, an IP address
	// ("127.0.0.1:8080", "[::1]:8080") or a host name. The port is a
	// number from 1 to 65535. No two listeners may share an address.
	Address string

	// TLS terminates TLS on the listener (key tls); nil for a cleartext
	// listener.
	TLS *ListenerTLS

	// HTTP2 says whether and how the listener speaks HTTP/2 (key http2).
	HTTP2 HTTP2

	// HTTP3 says whether the listener also serves HTTP/3 over QUIC, on
	// the UDP port of the same number (key http3).
	HTTP3 HTTP3

	// Engine is how the listener's cleartext HTTP/1.1 connections are
	// served (key engine): EngineLoop (the default) or EngineGoroutine.
	// TLS and h2c listeners always use the goroutine engine.
	Engine string
}

// Listener engines.
const (
	// EngineLoop serves with one event loop per core (Linux; elsewhere
	// the same as EngineGoroutine).
	EngineLoop = "loop"
	// EngineGoroutine serves each connection with a goroutine.
	EngineGoroutine = "goroutine"
)

// ListenerTLS is a listener's TLS termination: certificates from files,
// or obtained over ACME, never both.
type ListenerTLS struct {
	// Certificates are the certificate/key pairs served, picked by the
	// server name (SNI) the client sends (key certificates). Empty when
	// ACME is set.
	Certificates []Certificate

	// DefaultCertificate is the index in Certificates of the pair served
	// to clients whose server name no pair serves, or that send none (key
	// default_certificate; default 0, the first pair).
	DefaultCertificate int

	// ClientAuth asks clients for certificates (key client_auth): "none"
	// (the default), "request", "require", "verify_if_given" or
	// "require_and_verify"; the default is "require_and_verify" when
	// ClientCA is set.
	ClientAuth string

	// ClientCA is the PEM file of the CAs client certificates must chain
	// to (key client_ca), required by the verifying modes. Relative paths
	// are resolved against the configuration file's directory.
	ClientCA string

	// MinVersion is the oldest TLS version accepted: "1.2" (the default)
	// or "1.3" (key min_version).
	MinVersion string

	// ALPN lists the application protocols offered, most preferred first:
	// "h2" and "http/1.1" (key alpn; default both, h2 first, or only
	// "http/1.1" when http2 is disabled).
	ALPN []string

	// ReloadInterval is how often the certificate, key and client CA files
	// are checked for changes; 0 means never (key reload_interval; default
	// DefaultCertReloadInterval).
	ReloadInterval time.Duration

	// Fingerprint computes the JA3 and JA4 fingerprints of each client's
	// TLS ClientHello, for filters to read (key fingerprint; default
	// false).
	Fingerprint bool

	// ACME obtains and renews certificates automatically (key acme); nil
	// when Certificates are used.
	ACME *ACME
}

// DefaultCertReloadInterval is the default of ListenerTLS.ReloadInterval.
const DefaultCertReloadInterval = 5 * time.Second

// Certificate is one certificate/key pair of a TLS listener.
type Certificate struct {
	// Cert is the PEM file with the certificate, then any intermediates
	// (key cert, required). Relative paths are resolved against the
	// configuration file's directory.
	Cert string

	// Key is the PEM file with the certificate's unencrypted private key
	// (key key, required), resolved like Cert.
	Key string

	// Names are the server names the pair serves; "*.example.com" serves
	// any name one label under example.com (key names; default: the DNS
	// names in the certificate). Stored in lower case.
	Names []string
}

// ACME configures certificates obtained and renewed automatically from
// an ACME certificate authority such as Let's Encrypt.
type ACME struct {
	// Email is the account's contact address (key email; may be empty).
	Email string

	// CA is the URL of the CA's ACME directory (key ca; default: Let's
	// Encrypt's production directory).
	CA string

	// Domains are the names to obtain certificates for (key domains,
	// required), in lower case.
	Domains []string

	// Storage is the directory where the account, certificates and keys
	// are kept between runs (key storage, required), resolved like
	// Certificate.Cert.
	Storage string

	// CARoot is a PEM file of the root the ACME directory's own HTTPS
	// certificate chains to, for private CAs (key ca_root; default: the
	// system roots).
	CARoot string

	// Agree accepts the CA's subscriber agreement (key agree, which must
	// be true).
	Agree bool
}

// HTTP2 configures HTTP/2 toward clients on one listener. The limits
// also bound the listener's HTTP/3 connections.
type HTTP2 struct {
	// Enabled reports whether the listener speaks HTTP/2: over TLS when
	// "h2" is offered through ALPN (key enabled; default true with tls),
	// on a cleartext listener only with H2C.
	Enabled bool

	// H2C accepts cleartext HTTP/2 with prior knowledge on a cleartext
	// listener (key h2c; default false).
	H2C bool

	// MaxConcurrentStreams bounds the streams one client connection may
	// have open (key max_concurrent_streams; default
	// limits.H2MaxConcurrentStreams).
	MaxConcurrentStreams int

	// MaxHeaderListSize bounds the decoded request head of one stream, in
	// bytes (key max_header_list_size; default Limits.MaxHeaderBytes).
	MaxHeaderListSize int

	// StreamWindow and ConnectionWindow are the flow-control windows
	// granted to a client for request bodies, per stream and per
	// connection, in bytes (keys stream_window and connection_window;
	// defaults limits.H2StreamWindow and limits.H2ConnWindow).
	StreamWindow, ConnectionWindow int

	// MaxFrameSize is the largest frame Weir reads, in bytes (key
	// max_frame_size; default limits.H2MaxFrameSize).
	MaxFrameSize int

	// GlitchBudget and GlitchRate are a connection's flood budget: each
	// suspicious frame costs points, points refill at GlitchRate per
	// second up to GlitchBudget, and a connection that runs out is closed
	// (keys glitch_budget and glitch_rate; defaults limits.H2GlitchBudget
	// and limits.H2GlitchRate).
	GlitchBudget, GlitchRate int
}

// HTTP3 configures HTTP/3 on one listener.
type HTTP3 struct {
	// Enabled serves HTTP/3 over QUIC on the UDP port with the listener's
	// port number, and advertises it to TCP clients in an Alt-Svc header
	// (key enabled; default false). It needs TLS.
	Enabled bool
}

// Limits bounds what one client connection and its requests may use. Sizes
// are written as integers (bytes) or with a unit: "512B", "8KiB", "64KiB",
// "1MiB", "1GiB" (powers of 1024) or "1KB", "1MB", "1GB" (powers of 1000).
type Limits struct {
	// MaxRequestLine bounds the request line (method, target and
	// version), in bytes; longer lines are answered with 414 (key
	// max_request_line; default limits.MaxRequestLine). It may not
	// exceed MaxHeaderBytes.
	MaxRequestLine int

	// MaxHeaderBytes bounds the whole request head, request line included,
	// in bytes; larger heads are answered with 431 (key max_header_bytes;
	// default limits.MaxHeaderBytes).
	MaxHeaderBytes int

	// MaxHeaderFields bounds the number of header fields in one request
	// head; more are answered with 431 (key max_header_fields; default
	// limits.MaxHeaderFields). It is a count, not a size.
	MaxHeaderFields int

	// HeaderReadTimeout is how long a client has to send a complete
	// request head, counted from its first byte; slow heads are closed
	// with 408 (key header_read_timeout; default limits.HeaderReadTimeout).
	HeaderReadTimeout time.Duration

	// IdleTimeout is how long a kept-alive client connection may sit
	// without a request before Weir closes it (key idle_timeout; default
	// limits.IdleTimeout).
	IdleTimeout time.Duration

	// BodyReadTimeout is the longest gap allowed between two reads of a
	// request body (key body_read_timeout; default limits.BodyReadTimeout).
	BodyReadTimeout time.Duration

	// WriteTimeout is the longest a single write to the client may block
	// (key write_timeout; default limits.WriteTimeout).
	WriteTimeout time.Duration

	// MaxRequestsPerConn is how many requests one client connection may
	// carry before Weir closes it after the response (key
	// max_requests_per_conn; default limits.MaxRequestsPerConn).
	MaxRequestsPerConn int

	// MaxBodyBytes bounds a request body, in bytes; larger bodies are
	// answered with 413. 0 means no limit (key max_body_bytes; default
	// limits.MaxBodyBytes).
	MaxBodyBytes int64

	// MaxConnections bounds concurrent client connections per listener;
	// further connections wait in the kernel backlog. 0 means no limit
	// (key max_connections; default limits.MaxConnections).
	MaxConnections int

	// MaxChunkLine bounds one chunk-size line of a chunked request body,
	// extensions included, in bytes (key max_chunk_line; default
	// limits.MaxChunkLine).
	MaxChunkLine int

	// MaxTrailerBytes bounds the trailer section of a chunked request
	// body, in bytes (key max_trailer_bytes; default
	// limits.MaxTrailerBytes).
	MaxTrailerBytes int
}

// Proxy controls the headers Weir adds to the requests it forwards.
type Proxy struct {
	// ForwardedHeaders says which headers tell the upstream about the
	// client (key forwarded_headers): "x-forwarded" (the default) adds
	// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host;
	// "forwarded" adds the RFC 7239 Forwarded header; "both" adds all
	// four; "none" adds none.
	ForwardedHeaders string

	// Via adds "Via: 1.1 weir" to forwarded requests and responses (key
	// via; default true).
	Via bool

	// TrustForwarded appends the client address to an incoming
	// X-Forwarded-For (and Forwarded) header instead of replacing it.
	// Enable it only when every client reaches Weir through a proxy you
	// control, since clients can write anything in these headers (key
	// trust_forwarded; default false).
	TrustForwarded bool
}

// Log configures Weir's own log and the access log.
type Log struct {
	// Level is the least severe message logged: "debug", "info", "warn"
	// or "error" (key level; default "info").
	Level string

	// Format is "text" (one human-readable line per message) or "json"
	// (one JSON object per line) (key format; default "text").
	Format string

	// Access is where one line per request goes: "stdout" (the default),
	// "stderr", "off" (no access log) or the path of a file to append to
	// (key access).
	Access string
}

// Route sends the requests its match conditions select to one upstream,
// optionally rewriting headers on the way.
type Route struct {
	// Name identifies the route in logs and errors (key name; default
	// "route-N", N counting from 1 in file order). Names are unique.
	Name string

	// Match holds the conditions a request must meet, all of them, to take
	// this route (key match). A route without conditions matches every
	// request, so it belongs last.
	Match Match

	// Upstream is the name of the upstream the requests go to (key
	// upstream, required). It must be defined under upstreams.
	Upstream string

	// SetHost replaces the Host header sent upstream (key set_host;
	// default: keep the client's Host). It is a host name or IP address
	// with an optional port.
	SetHost string

	// GRPCWeb translates gRPC-Web requests to gRPC for the upstream's
	// HTTP/2 peers, and their responses back (key grpc_web; default
	// false).
	GRPCWeb bool

	// AddRequestHeaders are header fields set on the request before it
	// goes upstream, replacing fields of the same name (key
	// request_headers.add, a mapping from field name to value).
	AddRequestHeaders map[string]string

	// AddResponseHeaders are header fields set on the response before it
	// goes to the client, replacing fields of the same name (key
	// response_headers.add).
	AddResponseHeaders map[string]string

	// RemoveRequestHeaders are field names removed from the request
	// before it goes upstream (key request_headers.remove, a list).
	RemoveRequestHeaders []string

	// RemoveResponseHeaders are field names removed from the response
	// before it goes to the client (key response_headers.remove).
	RemoveResponseHeaders []string
}

// Match holds the conditions of a route. Every condition that is set must
// hold; conditions left out match anything.
type Match struct {
	// Hosts are the host names the route serves (key host: one name or a
	// list). A name is matched exactly, or "*.example.com" matches any
	// name ending in ".example.com" (but not example.com itself).
	// Matching ignores case and the port of the request's Host; names
	// are stored in lower case.
	Hosts []string

	// PathPrefix matches paths that start with it (key path_prefix). It
	// starts with "/". The query string is never part of the path.
	PathPrefix string

	// Path matches one path exactly (key path). It starts with "/".
	Path string

	// PathRegex is an RE2 regular expression (Go regexp syntax) that the
	// path must contain a match of (key path_regex); anchor it with ^ and
	// $ to match the whole path.
	PathRegex string

	// Methods are the accepted request methods, in upper case (key
	// method: one method or a list).
	Methods []string

	// Headers maps a header field name to the exact value the request
	// must carry; the value "*" only requires the field to be present (key
	// headers).
	Headers map[string]string
}

// Upstream is a named group of peers and the policy for using them.
type Upstream struct {
	// Name is the upstream's key under upstreams.
	Name string

	// Peers are the servers of the group (key peers, required: a list of
	// "http://host:port" strings, or of mappings {address: ..., weight:
	// N} for weights). No peer may appear twice.
	Peers []Peer

	// Scheme is the protocol spoken to every peer of the group, the
	// scheme of their URLs: "http" (HTTP/1.1), "https" (HTTP/1.1 over
	// TLS), "h2c" (cleartext HTTP/2 with prior knowledge) or "h2"
	// (HTTP/2 over TLS). All peers of a group share it.
	Scheme string

	// TLS configures connections to "https" and "h2" peers (key tls);
	// nil when the key is absent, which verifies peers against the
	// system roots. It is not allowed with "http" and "h2c" peers.
	TLS *UpstreamTLS

	// Balancer picks a peer for each request (key balancer):
	// "round_robin" (the default), "weighted_round_robin", "least_conn",
	// "p2c" (power of two random choices) or "consistent_hash".
	Balancer string

	// HashOn is what consistent_hash hashes to pick a peer (key hash_on,
	// required with consistent_hash and not allowed otherwise):
	// "client_ip", "path", "header:NAME" or "cookie:NAME".
	HashOn string

	// Keepalive controls the pool of idle connections to each peer (key
	// keepalive).
	Keepalive Keepalive

	// Timeouts bounds each exchange with a peer (key timeouts).
	Timeouts Timeouts

	// Retries is how many further peers Weir tries after a connect failure
	// (or, for idempotent requests, a reset before any response byte); 0
	// disables retries (key retries; default limits.MaxRetries).
	Retries int

	// MaxResponseHeaderBytes bounds a response head from a peer, in bytes;
	// larger heads are answered with 502 (key max_response_header_bytes;
	// default limits.MaxResponseHeaderBytes).
	MaxResponseHeaderBytes int

	// HealthCheck probes each peer in the background (key health_check);
	// nil when the key is absent, in which case only passive health
	// checking applies. "health_check: {}" enables it with the defaults.
	HealthCheck *HealthCheck

	// Passive ejects peers that fail real requests (key passive_health).
	Passive Passive
}

// Peer is one server of an upstream.
type Peer struct {
	// Address is the peer's "host:port", normalised: the host in lower
	// case, IPv6 addresses in brackets, and port 80 when the written
	// address has none.
	Address string

	// Scheme is the scheme of the peer's URL: "http", "https", "h2c" or
	// "h2" (the same for every peer of an upstream; see Upstream.Scheme).
	Scheme string

	// Weight is the peer's share of requests relative to the other peers
	// of the group, from 1 to 1000 (key weight; default 1).
	Weight int
}

// UpstreamTLS configures TLS toward the peers of one upstream.
type UpstreamTLS struct {
	// CA is a PEM file of the CAs the peers' certificates must chain to
	// (key ca; default: the system roots). Relative paths are resolved
	// against the configuration file's directory.
	CA string

	// ServerName is sent as SNI and checked against the peers'
	// certificates (key server_name; default: each peer's host).
	ServerName string

	// InsecureSkipVerify turns certificate verification off (key
	// insecure_skip_verify; default false). Weir logs a warning when it
	// starts with it on.
	InsecureSkipVerify bool

	// Cert and Key are a client certificate and its key, presented to
	// peers that ask for one (keys cert and key; both or neither).
	Cert, Key string

	// MinVersion is the oldest TLS version offered: "1.2" (the default)
	// or "1.3" (key min_version).
	MinVersion string
}

// Keepalive controls the pool of idle connections Weir keeps to each peer.
type Keepalive struct {
	// MaxIdle is how many idle keep-alive connections are kept to one
	// peer (key max_idle; default limits.PoolMaxIdlePerPeer, lowered to
	// MaxPerPeer when that is smaller). 0 disables reuse. It may not
	// exceed a non-zero MaxPerPeer.
	MaxIdle int

	// MaxPerPeer bounds all connections, busy and idle, to one peer;
	// requests beyond it are answered with 503. 0 means no limit (key
	// max_per_peer; default limits.PoolMaxPerPeer).
	MaxPerPeer int

	// IdleTimeout is how long an idle connection is kept (key
	// idle_timeout; default limits.PoolIdleTimeout).
	IdleTimeout time.Duration
}

// Timeouts bounds each exchange with a peer.
type Timeouts struct {
	// Connect bounds one TCP connect to a peer (key connect; default
	// limits.ConnectTimeout).
	Connect time.Duration

	// ResponseHeader bounds the wait for a peer's response head after the
	// request was written; expiry is answered with 504 (key
	// response_header; default limits.ResponseHeaderTimeout).
	ResponseHeader time.Duration

	// Idle is the longest gap allowed between two reads or writes on a
	// peer connection while a body streams (key idle; default
	// limits.UpstreamIdleTimeout).
	Idle time.Duration

	// Request bounds a whole exchange, from the first byte of the request
	// to the last byte of the response. 0 means no limit (key request;
	// default limits.RequestTimeout).
	Request time.Duration
}

// HealthCheck configures active health checking: Weir probes every peer
// of the upstream at each Interval and routes only to peers marked up.
type HealthCheck struct {
	// Type is "http" (send a GET request and check the status; the
	// default) or "tcp" (only open a connection) (key type).
	Type string

	// Path is the request target of an http check (key path; default
	// "/"). It starts with "/".
	Path string

	// Host is the Host header of an http check (key host; default: the
	// peer's address).
	Host string

	// Interval is the time between two probes of one peer (key interval;
	// default limits.HealthInterval).
	Interval time.Duration

	// Timeout bounds one probe (key timeout; default limits.HealthTimeout,
	// or Interval if that is shorter). It may not exceed Interval.
	Timeout time.Duration

	// Rise is how many consecutive passed probes mark a down peer up (key
	// rise; default limits.HealthRise).
	Rise int

	// Fall is how many consecutive failed probes mark an up peer down
	// (key fall; default limits.HealthFall).
	Fall int

	// ExpectStatus lists the response statuses that pass an http check
	// (key expect_status: one status or a list). nil, the default, means
	// any 2xx or 3xx status passes.
	ExpectStatus []int
}

// Passive configures passive health checking: peers that fail real
// requests are ejected for a while.
type Passive struct {
	// MaxFails consecutive failed exchanges eject a peer; 0 disables
	// passive health checking (key max_fails; default
	// limits.PassiveMaxFails).
	MaxFails int

	// EjectFor is how long an ejected peer receives no requests (key
	// eject_for; default limits.PassiveEjectFor).
	EjectFor time.Duration
}

// MaxPeers is the most peers one upstream may list: the balancers track
// the peers a request already tried in a 64-bit mask.
const MaxPeers = 64
