// Package observe holds Weir's observability plumbing that must not block
// the hot path: a buffered line writer for access logs.
package observe

import (
	"io"
	"sync"
	"time"
)

// LineWriter batches log lines and writes them from a background flusher,
// so a request never waits for the disk or the terminal. When the buffer
// reaches its limit, lines are written synchronously (back-pressure rather
// than unbounded memory).
type LineWriter struct {
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
	limit  int
	stop   chan struct{}
	done   chan struct{}
	closed bool // after Close, lines are written through at once
}

// NewLineWriter starts a writer that flushes every interval.
func NewLineWriter(w io.Writer, interval time.Duration) *LineWriter {
	lw := &LineWriter{w: w, buf: make([]byte, 0, 64<<10), limit: 64 << 10,
		stop: make(chan struct{}), done: make(chan struct{})}
	go lw.flusher(interval)
	return lw
}

func (lw *LineWriter) flusher(interval time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			lw.Flush()
		case <-lw.stop:
			lw.Flush()
			return
		}
	}
}

// Write appends one or more complete lines.
func (lw *LineWriter) Write(line []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return lw.w.Write(line)
	}
	if len(lw.buf)+len(line) > lw.limit {
		lw.flushLocked()
	}
	lw.buf = append(lw.buf, line...)
	return len(line), nil
}

// Flush writes out what is buffered.
func (lw *LineWriter) Flush() {
	lw.mu.Lock()
	lw.flushLocked()
	lw.mu.Unlock()
}

func (lw *LineWriter) flushLocked() {
	if len(lw.buf) > 0 {
		_, _ = lw.w.Write(lw.buf)
		lw.buf = lw.buf[:0]
	}
}

// Close flushes and stops the background flusher. Lines written after
// Close (by requests that outlived a reload) go straight to the writer.
func (lw *LineWriter) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	lw.mu.Unlock()
	close(lw.stop)
	<-lw.done
	return nil
}
