package proxy

import (
	"errors"
	"syscall"
)

// isTemporaryAccept reports accept errors that pass with time: running
// out of file descriptors or buffers, or a connection aborted in the queue.
func isTemporaryAccept(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}
