//go:build !unix

package upstream

import "net"

func (c *Conn) initProbe(net.Conn) {}

// PeerClosed cannot probe without blocking on this platform; it assumes
// the connection is usable and lets the engine's stale-connection retry
// handle the rest.
func (c *Conn) PeerClosed() bool { return false }
