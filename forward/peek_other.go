//go:build !unix

package forward

import "net"

func peekSocket(net.Conn) (byte, error) { return 0, errNoPeek }
