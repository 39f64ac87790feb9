//go:build !unix

package proxy

// rawConn is unused here: idle connections read through net.Conn and
// keep their buffer while they wait.
type rawConn interface {
	Read(f func(fd uintptr) bool) error
}

func (c *conn) initRaw() {}
