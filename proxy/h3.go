package proxy

import (
	"context"
	"crypto/tls"
	"net"

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
	f := &h3Front{srv: s, maxHeader: int(l.MaxHeaderListSize)}
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
