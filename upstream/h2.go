package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/weirproxy/weir/limits"
)

// H2Transport sends requests to HTTP/2 peers. Requests to one peer share
// few connections: each carries as many concurrent streams as the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS allows, and a new connection is dialed
// only when every open one is full. Connections are keyed by peer address
// within one transport; a transport belongs to one group, so everything
// else that decides whether a connection can be shared (TLS settings,
// SNI, client certificate) is the same for all of them.
type H2Transport struct {
	t      *http.Transport
	tls    *tls.Config
	dialer net.Dialer
	dialed atomic.Int64
}

// H2Options configure an H2Transport.
type H2Options struct {
	// TLS, when set, makes connections TLS with ALPN "h2"; nil means h2c
	// with prior knowledge (cleartext HTTP/2).
	TLS *tls.Config
	// ConnectTimeout bounds a dial and TLS handshake (default
	// limits.ConnectTimeout).
	ConnectTimeout time.Duration
	// IdleTimeout closes connections without streams for this long
	// (default limits.PoolIdleTimeout).
	IdleTimeout time.Duration
	// MaxHeaderListSize bounds response heads (default
	// limits.MaxHeaderBytes).
	MaxHeaderListSize uint32
	// PingTimeout: a connection silent for ReadIdle is pinged and closed
	// when no answer comes within this (defaults 30s and 15s).
	ReadIdle, PingTimeout time.Duration
}

// NewH2Transport returns a transport for one group's HTTP/2 peers.
func NewH2Transport(o H2Options) *H2Transport {
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = limits.ConnectTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = limits.PoolIdleTimeout
	}
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = limits.MaxHeaderBytes
	}
	if o.ReadIdle == 0 {
		o.ReadIdle = 30 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 15 * time.Second
	}
	h := &H2Transport{tls: o.TLS}
	h.dialer.Timeout = o.ConnectTimeout
	h.dialer.KeepAlive = 30 * time.Second
	protos := new(http.Protocols)
	if h.tls != nil {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	h.t = &http.Transport{
		Protocols:              protos,
		DialContext:            h.dial,
		TLSClientConfig:        h.tls,
		TLSHandshakeTimeout:    o.ConnectTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: int64(o.MaxHeaderListSize),
		IdleConnTimeout:        o.IdleTimeout,
		ForceAttemptHTTP2:      true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: o.ReadIdle,
			PingTimeout:     o.PingTimeout,
		},
	}
	return h
}

// dial opens the TCP connection under a peer connection; the transport
// runs TLS (with ALPN h2) on top when configured.
func (h *H2Transport) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := h.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	h.dialed.Add(1)
	return nc, nil
}

// RoundTrip sends one request. The request's URL names the peer.
func (h *H2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return h.t.RoundTrip(req)
}

// Scheme is the URL scheme requests through h use: "https" over TLS,
// "http" for h2c.
func (h *H2Transport) Scheme() string {
	if h.tls != nil {
		return "https"
	}
	return "http"
}

// Dialed returns how many connections h ever opened.
func (h *H2Transport) Dialed() int64 { return h.dialed.Load() }

// Close closes idle connections; busy ones close when their streams end.
func (h *H2Transport) Close() { h.t.CloseIdleConnections() }
