package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/weirproxy/weir/resolver"
)

// relayBufSize is the buffer each direction of a tunnel copies through.
const relayBufSize = 32 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// tunnel is the shared state of a relay's two directions.
type tunnel struct {
	idle    time.Duration // ≤0: no idle limit
	last    atomic.Int64  // unix nanos of the last byte moved either way
	aborted atomic.Bool   // one direction failed; the other must stop
	a, b    net.Conn
	user    *userState         // rate limits; nil: none
	ctx     context.Context    // ends rate waits
	cancel  context.CancelFunc // ends ctx when the tunnel aborts
}

// relay copies client→up (after writing buffered, bytes the client sent
// early) and up→client until both directions ended, then returns the
// byte counts of each. When one side finishes sending, the other side's
// write half is closed and the other direction goes on. The tunnel ends
// early when no byte moved either way for idle, or when either direction
// fails. Each direction is slowed to the user's rate, when u has one;
// ctx ending stops a wait for the rate. The caller closes both
// connections.
func relay(ctx context.Context, client net.Conn, buffered []byte, up net.Conn, idle time.Duration, u *userState) (in, out int64, err error) {
	t := &tunnel{idle: idle, a: client, b: up, user: u}
	t.ctx, t.cancel = context.WithCancel(ctx)
	defer t.cancel()
	t.last.Store(time.Now().UnixNano())
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		var n int64
		var err error
		if len(buffered) > 0 {
			var w int
			if idle > 0 {
				_ = up.SetWriteDeadline(time.Now().Add(idle))
			}
			w, err = up.Write(buffered)
			n = int64(w)
		}
		if err == nil {
			var m int64
			m, err = t.copy(up, client, u.limiter(true))
			n += m
		}
		t.finish(up, err)
		done <- result{n, err}
	}()
	out, outErr := t.copy(client, up, u.limiter(false))
	t.finish(client, outErr)
	r := <-done
	in = r.n
	switch {
	case r.err != nil && !errors.Is(r.err, errAborted):
		err = r.err
	case outErr != nil && !errors.Is(outErr, errAborted):
		err = outErr
	}
	return in, out, err
}

var errAborted = errors.New("tunnel ended by the other direction")

// finish ends one direction: a clean end closes dst's write half, so the
// peer sees the end of stream; a failure stops the other direction too.
func (t *tunnel) finish(dst net.Conn, err error) {
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	if t.aborted.Swap(true) {
		return
	}
	t.cancel()
	now := time.Now()
	_ = t.a.SetDeadline(now)
	_ = t.b.SetDeadline(now)
}

func (t *tunnel) touch(now time.Time) { t.last.Store(now.UnixNano()) }

// activeSince returns when a byte last moved, and whether the tunnel is
// still within its idle limit at now.
func (t *tunnel) active(now time.Time) (time.Time, bool) {
	last := time.Unix(0, t.last.Load())
	return last, t.idle <= 0 || now.Sub(last) < t.idle
}

// copy moves bytes from src to dst until src ends (nil), the tunnel is
// idle, or either side fails. With lim, each read waits for its bytes
// from the bucket before they are written on.
func (t *tunnel) copy(dst, src net.Conn, lim *rate.Limiter) (int64, error) {
	if lim == nil {
		if d, ok := dst.(*net.TCPConn); ok {
			if s, ok := src.(*net.TCPConn); ok {
				return t.splice(d, s)
			}
		}
	}
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	if lim != nil {
		buf = buf[:min(len(buf), lim.Burst())]
	}
	var n int64
	// Deadlines are moved only every idle/8, not on every read; when one
	// passes while the tunnel was active, it is moved to the idle limit
	// counted from the last byte.
	var readArmed, writeArmed time.Time
	arm := func(set func(time.Time) error, armed *time.Time, now time.Time) {
		if t.idle > 0 && now.Sub(*armed) > t.idle/8 {
			_ = set(now.Add(t.idle))
			*armed = now
		}
	}
	for {
		arm(src.SetReadDeadline, &readArmed, time.Now())
		r, rerr := src.Read(buf)
		if r > 0 {
			if lim != nil {
				if err := waitN(t.ctx, lim, r); err != nil {
					if t.aborted.Load() {
						return n, errAborted
					}
					return n, err
				}
			}
			now := time.Now()
			t.touch(now)
			p := buf[:r]
			for len(p) > 0 {
				arm(dst.SetWriteDeadline, &writeArmed, now)
				w, werr := dst.Write(p)
				n += int64(w)
				p = p[w:]
				now = time.Now()
				if w > 0 {
					t.touch(now)
				}
				if werr != nil {
					if t.aborted.Load() {
						return n, errAborted
					}
					if last, ok := t.active(now); ok && isTimeout(werr) {
						_ = dst.SetWriteDeadline(last.Add(t.idle))
						writeArmed = now
						continue
					}
					return n, werr
				}
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, nil
			}
			if t.aborted.Load() {
				return n, errAborted
			}
			if last, ok := t.active(time.Now()); ok && isTimeout(rerr) {
				_ = src.SetReadDeadline(last.Add(t.idle))
				readArmed = time.Now()
				continue
			}
			if isTimeout(rerr) {
				return n, errTunnelIdle
			}
			return n, rerr
		}
	}
}

var errTunnelIdle = errors.New("tunnel idle timeout")

// spliceStep is how many bytes one kernel copy moves at most before the
// tunnel's activity and deadlines are updated.
const spliceStep = 256 << 10

// splice moves bytes between two TCP connections in the kernel
// (splice(2) through a pipe, no copy through user space), in steps so
// that the idle limit sees the traffic. Used when no rate limit applies.
func (t *tunnel) splice(dst, src *net.TCPConn) (int64, error) {
	var n int64
	lr := &io.LimitedReader{R: src}
	for {
		now := time.Now()
		if t.idle > 0 {
			last, _ := t.active(now)
			_ = src.SetReadDeadline(last.Add(t.idle))
			_ = dst.SetWriteDeadline(now.Add(t.idle))
		}
		lr.N = spliceStep
		m, err := dst.ReadFrom(lr)
		n += m
		if m > 0 {
			t.touch(time.Now())
		}
		if err == nil {
			if m < spliceStep {
				return n, nil // src ended
			}
			continue
		}
		if t.aborted.Load() {
			return n, errAborted
		}
		if isTimeout(err) {
			if _, ok := t.active(time.Now()); ok {
				continue
			}
			return n, errTunnelIdle
		}
		return n, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.As(err, &ne) && ne.Timeout()
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isDNSError reports a failed name resolution (by the system resolver or
// package resolver).
func isDNSError(err error) bool {
	var dnsErr *net.DNSError
	var lookupErr *resolver.LookupError
	return errors.As(err, &dnsErr) || errors.As(err, &lookupErr)
}

// bgCtx is the context of outbound dials: each is bounded by the
// dialer's own timeout, not by the client connection.
var bgCtx = context.Background()
