package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// ServeHTTP3 serves HTTP/3 over QUIC on pc with the server's handler, the
// same phases and filters as every other front end. tlsConf supplies the
// certificates (ALPN is set to h3). It returns when pc is closed or
// Shutdown is called.
func (s *Server) ServeHTTP3(pc net.PacketConn, tlsConf *tls.Config, o *ListenerOptions) error {
	ls := newListenerState(o)
	l := &ls.opts.H2
	f := &h3Front{h2Front{srv: s, tls: true, proto: 3, maxHeader: int(l.MaxHeaderListSize)}}
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		f.local = ua.AddrPort()
	}
	hs := &http3.Server{
		Handler:        f,
		TLSConfig:      http3.ConfigureTLSConfig(tlsConf),
		MaxHeaderBytes: int(l.MaxHeaderListSize),
		IdleTimeout:    l.IdleTimeout,
		QUICConfig: &quic.Config{
			MaxIncomingStreams:             int64(l.MaxConcurrentStreams),
			InitialStreamReceiveWindow:     uint64(l.StreamWindow),
			InitialConnectionReceiveWindow: uint64(l.ConnWindow),
			MaxIdleTimeout:                 l.IdleTimeout,
		},
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.h3 = append(s.h3, hs)
	s.mu.Unlock()
	err := hs.Serve(pc)
	if s.draining.Load() {
		return ErrServerClosed
	}
	return err
}

// h3Front fills the per-request TLS facts that HTTP/3 gives per request.
type h3Front struct{ h2Front }

func (f *h3Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ff := f.h2Front
	if r.TLS != nil {
		ff.tlsInfo = &TLSInfo{Version: r.TLS.Version, CipherSuite: r.TLS.CipherSuite,
			ServerName: r.TLS.ServerName, ALPN: r.TLS.NegotiatedProtocol}
	}
	ff.ServeHTTP(w, r)
}

// shutdownH3 stops the HTTP/3 servers gracefully.
func (s *Server) shutdownH3(ctx context.Context) {
	s.mu.Lock()
	h3 := s.h3
	s.mu.Unlock()
	for _, hs := range h3 {
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
		}
	}
}
