// Package rbuf is the read buffer both sides of the engine use: bytes read
// from a connection but not yet consumed, with an optional pinned prefix
// (a parsed head that slices still point into) that compaction must keep.
package rbuf

import (
	"errors"
	"io"
)

// ErrFull means the buffer has no room left and cannot compact.
var ErrFull = errors.New("read buffer full")

// Buffer holds B[R:W] unread. B[:Floor] is pinned: Fill never moves it.
type Buffer struct {
	B        []byte
	R, W     int
	Floor    int
	ReadSize int // when > 0, Fill reads at most this many bytes at once
}

// Unread returns the bytes read but not consumed.
func (b *Buffer) Unread() []byte { return b.B[b.R:b.W] }

// Buffered returns how many bytes are unread.
func (b *Buffer) Buffered() int { return b.W - b.R }

// Consume marks n unread bytes as consumed.
func (b *Buffer) Consume(n int) {
	b.R += n
	if b.R == b.W && b.R >= b.Floor {
		b.R, b.W = b.Floor, b.Floor
	}
}

// Free returns how much room Fill has without growing, after compaction.
func (b *Buffer) Free() int { return len(b.B) - b.Floor - (b.W - b.R) }

// Compact moves the unread bytes down to Floor.
func (b *Buffer) Compact() {
	if b.R > b.Floor {
		n := copy(b.B[b.Floor:], b.B[b.R:b.W])
		b.R, b.W = b.Floor, b.Floor+n
	}
}

// Fill reads once from r into the free space, compacting first if the end
// of the buffer is reached. It returns ErrFull when there is no room.
func (b *Buffer) Fill(r io.Reader) (int, error) {
	if b.W == len(b.B) {
		b.Compact()
		if b.W == len(b.B) {
			return 0, ErrFull
		}
	}
	p := b.B[b.W:]
	if b.ReadSize > 0 && len(p) > b.ReadSize {
		p = p[:b.ReadSize]
	}
	n, err := r.Read(p)
	b.W += n
	return n, err
}

// Grow enlarges B to at least size bytes, keeping its contents and indices.
func (b *Buffer) Grow(size int) {
	if size <= len(b.B) {
		return
	}
	nb := make([]byte, size)
	copy(nb, b.B[:b.W])
	b.B = nb
}

// Reset forgets all contents.
func (b *Buffer) Reset() { b.R, b.W, b.Floor = 0, 0, 0 }
