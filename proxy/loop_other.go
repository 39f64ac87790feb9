//go:build !linux

package proxy

import "net"

const loopSupported = false

func (s *Server) serveLoops(*net.TCPListener, *listenerState) error { panic("unreachable") }
