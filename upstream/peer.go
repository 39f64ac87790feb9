// Package upstream owns everything Weir knows about the servers behind it:
// peers, their keep-alive connection pools, the dialer, load balancers and
// health checks. It knows nothing of routes or of the client side.
package upstream

import (
	"sync/atomic"
	"time"

	"github.com/weirproxy/weir/http1"
)

// Peer is one origin server of a group.
type Peer struct {
	// Addr is the dial address, "host:port".
	Addr string
	// Weight is the relative share for weighted balancers (≥1).
	Weight int
	// Index is the peer's position in its group (0..63).
	Index int

	inflight     atomic.Int64
	up           atomic.Bool  // active health state
	ejectedUntil atomic.Int64 // passive ejection deadline, unix nanos
	fails        atomic.Int32 // consecutive passive failures

	pool *Pool
}

// NewPeer returns a peer that starts healthy, with its own pool.
func NewPeer(addr string, weight, index int, opts PoolOptions) *Peer {
	if weight < 1 {
		weight = 1
	}
	p := &Peer{Addr: addr, Weight: weight, Index: index}
	p.up.Store(true)
	p.pool = newPool(addr, opts)
	return p
}

// Pool returns the peer's keep-alive connection pool.
func (p *Peer) Pool() *Pool { return p.pool }

// Begin marks the start of a request to p; End marks its end.
func (p *Peer) Begin() { p.inflight.Add(1) }

// End marks the end of a request started with Begin.
func (p *Peer) End() { p.inflight.Add(-1) }

// Group is a named set of peers with a balancer and the policies that go
// with it (timeouts, retries, passive health). It is immutable once built;
// peers carry the mutable state.
type Group struct {
	Name     string
	Peers    []*Peer
	Balancer Balancer
	// HashOn tells the engine what request value feeds Balancer.Pick's key.
	HashOn   HashOn
	Timeouts Timeouts
	// Retries is how many further peers to try after a failure.
	Retries int
	// PassiveMaxFails and PassiveEjectFor configure passive ejection.
	PassiveMaxFails int
	PassiveEjectFor time.Duration
	// ResponseLimits bounds response heads from the peers (zero fields:
	// defaults of package limits).
	ResponseLimits http1.Limits
	// Proto is the protocol spoken to the peers: HTTP/1.1 (the zero
	// value) over each peer's Pool, or HTTP/2 over H2.
	Proto Proto
	// H2 multiplexes requests over few HTTP/2 connections per peer when
	// Proto is ProtoH2 (see NewH2Transport).
	H2 *H2Transport
}

// Proto is an upstream wire protocol.
type Proto uint8

// Upstream protocols.
const (
	ProtoHTTP1 Proto = iota // HTTP/1.1, cleartext or TLS (PoolOptions.TLS)
	ProtoH2                 // HTTP/2: h2c (prior knowledge) or TLS with ALPN h2
)

// HashKind is the request value a consistent-hash group keys on.
type HashKind uint8

// Hash kinds.
const (
	HashNone HashKind = iota
	HashClientIP
	HashPath
	HashHeader
	HashCookie
)

// HashOn is a HashKind plus the header or cookie name it reads.
type HashOn struct {
	Kind HashKind
	Name string
}

// Timeouts bound the upstream side of one exchange.
type Timeouts struct {
	Connect        time.Duration
	ResponseHeader time.Duration
	Idle           time.Duration
	Request        time.Duration // 0: no limit
}

// Close retires the group's pools: idle connections close now, busy ones
// when their exchange ends.
func (g *Group) Close() {
	for _, p := range g.Peers {
		p.pool.Close()
	}
	if g.H2 != nil {
		g.H2.Close()
	}
}
