package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirproxy/weir/internal/rbuf"
	"github.com/weirproxy/weir/limits"
)

// PoolOptions configure a peer's connection pool.
type PoolOptions struct {
	// MaxIdle is how many idle connections are kept (default
	// limits.PoolMaxIdlePerPeer). Negative keeps none.
	MaxIdle int
	// MaxPerPeer bounds all connections, busy and idle; 0: no limit.
	MaxPerPeer int
	// IdleTimeout drops connections idle longer than this (default
	// limits.PoolIdleTimeout).
	IdleTimeout time.Duration
	// ConnectTimeout bounds one dial (default limits.ConnectTimeout).
	ConnectTimeout time.Duration
	// BufferSize is the read buffer each connection owns (default 16 KiB).
	BufferSize int
	// Dial, when set, opens connections instead of a plain TCP dial of
	// the peer address (a forward proxy's egress policy and source
	// address go here). Its errors are returned by Get as they are.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, when set, makes every connection a TLS client connection with
	// this configuration (ServerName must be set: the peer's host or an
	// override). The handshake counts toward ConnectTimeout.
	TLS *tls.Config
}

func (o *PoolOptions) fill() {
	if o.MaxIdle == 0 {
		o.MaxIdle = limits.PoolMaxIdlePerPeer
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = limits.PoolIdleTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = limits.ConnectTimeout
	}
	if o.BufferSize == 0 {
		o.BufferSize = 16 << 10
	}
}

// ErrPoolFull is returned by Get when MaxPerPeer connections are open.
var ErrPoolFull = errors.New("connection limit reached")

// Pool keeps idle keep-alive connections to one peer and dials new ones.
// Idle connections are reused last-in first-out, so a steady load touches
// as few connections as it needs and the rest age out.
type Pool struct {
	addr   string
	opts   PoolOptions
	dialer net.Dialer

	mu   sync.Mutex
	idle []*Conn // LIFO stack

	closed atomic.Bool  // set by Close: returned connections are closed
	open   atomic.Int64 // all connections, busy and idle
	dialed atomic.Int64 // connections ever dialed (for tests and metrics)
	// extIdle counts idle connections held by event loops (AddIdle).
	extIdle atomic.Int64
	// epoch moves on every CloseIdle: event loops drop the idle
	// connections they kept under an earlier one.
	epoch atomic.Uint64
}

func newPool(addr string, opts PoolOptions) *Pool {
	opts.fill()
	p := &Pool{addr: addr, opts: opts}
	p.dialer.Timeout = opts.ConnectTimeout
	p.dialer.KeepAlive = 30 * time.Second
	return p
}

// Conn is one connection to a peer. It owns a read buffer that holds bytes
// read ahead of what the engine consumed.
type Conn struct {
	net.Conn
	pool *Pool
	// In holds bytes read from the peer and not yet consumed.
	In rbuf.Buffer
	// ReadDL and WriteDL remember the deadlines last set on the
	// connection, so the engine can skip setting one that barely moved.
	ReadDL, WriteDL time.Time
	// Reused reports whether the connection came from the idle pool.
	Reused    bool
	idleSince int64 // unix nanos
	closed    atomic.Bool

	raw       syscall.RawConn
	probeFn   func(fd uintptr) bool
	probeBuf  [1]byte
	probeDead bool
}

// Get returns an idle connection or dials a new one. With live set, idle
// connections the peer has closed meanwhile are skipped (one non-blocking
// system call each): callers ask for that when the request could not be
// sent again after a failure, such as one whose body streams.
func (p *Pool) Get(ctx context.Context, live bool) (*Conn, error) {
	for {
		c := p.getIdle()
		if c == nil {
			break
		}
		if !live || !c.PeerClosed() {
			return c, nil
		}
		c.Close()
	}
	if max := p.opts.MaxPerPeer; max > 0 && p.open.Load() >= int64(max) {
		return nil, ErrPoolFull
	}
	p.open.Add(1)
	var nc net.Conn
	var err error
	if p.opts.Dial != nil {
		nc, err = p.opts.Dial(ctx, p.addr)
	} else {
		nc, err = p.dialer.DialContext(ctx, "tcp", p.addr)
	}
	if err != nil {
		p.open.Add(-1)
		return nil, err
	}
	tcp := nc
	if p.opts.TLS != nil {
		if nc, err = p.handshake(ctx, nc); err != nil {
			p.open.Add(-1)
			return nil, err
		}
	}
	p.dialed.Add(1)
	c := &Conn{Conn: nc, pool: p, In: rbuf.Buffer{B: make([]byte, p.opts.BufferSize)}}
	// The liveness probe peeks at the TCP socket even under TLS: any
	// unread record (a close_notify, a late session ticket) makes it
	// report the connection unusable, which only costs a new dial.
	c.initProbe(tcp)
	return c, nil
}

// handshake runs the TLS client handshake within the connect timeout.
func (p *Pool) handshake(ctx context.Context, nc net.Conn) (net.Conn, error) {
	tc := tls.Client(nc, p.opts.TLS)
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

func (p *Pool) getIdle() *Conn {
	now := time.Now().UnixNano()
	deadline := now - int64(p.opts.IdleTimeout)
	var stale []*Conn
	var c *Conn
	p.mu.Lock()
	for len(p.idle) > 0 {
		n := len(p.idle) - 1
		c = p.idle[n]
		p.idle[n] = nil
		p.idle = p.idle[:n]
		if c.idleSince >= deadline {
			break
		}
		stale = append(stale, c)
		c = nil
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
	if c != nil {
		c.Reused = true
	}
	return c
}

// Put returns a connection whose exchange ended cleanly with nothing left
// unread; it is closed instead when the pool is full.
func (p *Pool) Put(c *Conn) {
	if c.In.Buffered() != 0 || p.opts.MaxIdle < 0 {
		c.Close()
		return
	}
	c.In.Reset()
	c.idleSince = time.Now().UnixNano()
	p.mu.Lock()
	if len(p.idle) >= p.opts.MaxIdle || p.closed.Load() {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// Close closes the connection and forgets it. It is safe to call twice.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.pool.open.Add(-1)
	return c.Conn.Close()
}

// Close closes every idle connection, and every connection returned
// later: the pool is retired (after a reload). Get still works.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.CloseIdle()
}

// PruneClosed closes the idle connections whose peer has closed them, as
// after a peer restart, and reports how many it closed.
func (p *Pool) PruneClosed() int {
	p.mu.Lock()
	j := 0
	var dead []*Conn
	for _, c := range p.idle {
		if c.PeerClosed() {
			dead = append(dead, c)
			continue
		}
		p.idle[j] = c
		j++
	}
	clear(p.idle[j:])
	p.idle = p.idle[:j]
	p.mu.Unlock()
	for _, c := range dead {
		c.Close()
	}
	return len(dead)
}

// CloseIdle closes every idle connection.
func (p *Pool) CloseIdle() {
	p.epoch.Add(1)
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// Stats reports the pool's open, idle and ever-dialed connection counts.
func (p *Pool) Stats() (open, idle, dialed int64) {
	p.mu.Lock()
	idle = int64(len(p.idle)) + p.extIdle.Load()
	p.mu.Unlock()
	return p.open.Load(), idle, p.dialed.Load()
}

// Pool returns the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

// An event loop (package proxy's) keeps connections of its own to a
// peer, registered with the loop instead of sitting in Pool's idle list;
// the methods below let it count them against the same limits and hand
// one over to the goroutine engine.

// Direct reports whether connections to the peer are plain TCP to the
// pool's address, with no dial hook and no TLS: the kind an event loop
// can open itself.
func (p *Pool) Direct() bool { return p.opts.Dial == nil && p.opts.TLS == nil }

// Addr is the peer's dial address.
func (p *Pool) Addr() string { return p.addr }

// Retired reports whether Close was called.
func (p *Pool) Retired() bool { return p.closed.Load() }

// Limits returns the idle bound, the idle timeout and the connect
// timeout in force.
func (p *Pool) Limits() (maxIdle int, idleTimeout, connectTimeout time.Duration) {
	return p.opts.MaxIdle, p.opts.IdleTimeout, p.opts.ConnectTimeout
}

// Reserve counts a connection the caller is about to open; ErrPoolFull
// when MaxPerPeer connections are open. Unreserve gives it back.
func (p *Pool) Reserve() error {
	if max := p.opts.MaxPerPeer; max > 0 && p.open.Load() >= int64(max) {
		return ErrPoolFull
	}
	p.open.Add(1)
	p.dialed.Add(1)
	return nil
}

// Unreserve forgets a connection counted by Reserve that closed.
func (p *Pool) Unreserve() { p.open.Add(-1) }

// Epoch counts CloseIdle calls: an idle connection kept outside the pool
// under an earlier epoch is to be closed.
func (p *Pool) Epoch() uint64 { return p.epoch.Load() }

// AddIdle moves the count of idle connections kept outside the pool's
// own list (by an event loop), for Stats.
func (p *Pool) AddIdle(n int64) { p.extIdle.Add(n) }

// Adopt wraps a connection counted by Reserve, with the bytes already
// read from it, as a Conn of this pool.
func (p *Pool) Adopt(nc net.Conn, in rbuf.Buffer, reused bool) *Conn {
	c := &Conn{Conn: nc, pool: p, In: in, Reused: reused}
	c.initProbe(nc)
	return c
}
