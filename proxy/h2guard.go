package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Glitch costs: what one suspicious event takes from an HTTP/2
// connection's budget (see H2Limits).
const (
	glitchFrame         = 1   // RST_STREAM, PING, SETTINGS, PRIORITY, empty DATA, CONTINUATION
	glitchProtocolError = 10  // a stream or connection error the server counted
	glitchHeaderList    = 100 // a header list over the limit (HPACK bomb)
)

// Frame types the guard looks at (RFC 9113 6).
const (
	frameData         = 0x0
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagAck           = 0x1
)

// errCalm is what the guard's Read returns once the budget ran out: the
// HTTP/2 server answers a ConnectionError with GOAWAY carrying its code,
// then closes.
var errCalm = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)

// h2Guard sits between an HTTP/2 client connection and the server. It
// follows the frame headers in the bytes the server reads (no copy, no
// decoding beyond the 9-byte header) and charges a token bucket for
// frames that cost the server work without doing the client any good.
// It is what turns Rapid Reset (CVE-2023-44487), CONTINUATION, PING,
// SETTINGS and empty-frame floods into a GOAWAY.
type h2Guard struct {
	net.Conn
	preface int // client preface bytes still to pass
	hdr     [9]byte
	hn      int
	skip    uint32

	mu       sync.Mutex
	tokens   float64
	budget   float64
	rate     float64
	last     time.Time
	tripped  bool
	lastType byte
}

func newH2Guard(nc net.Conn, budget, rate int) *h2Guard {
	return &h2Guard{Conn: nc, preface: len(http2.ClientPreface), tokens: float64(budget),
		budget: float64(budget), rate: float64(rate), last: time.Now()}
}

// charge takes cost points; when none are left it trips the guard and
// wakes the server's read so that it sees errCalm.
func (g *h2Guard) charge(cost int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tripped {
		return
	}
	now := time.Now()
	g.tokens = min(g.budget, g.tokens+now.Sub(g.last).Seconds()*g.rate)
	g.last = now
	g.tokens -= float64(cost)
	if g.tokens < 0 {
		g.tripped = true
		_ = g.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (g *h2Guard) isTripped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}

func (g *h2Guard) Read(p []byte) (int, error) {
	if g.isTripped() {
		return 0, errCalm
	}
	n, err := g.Conn.Read(p)
	if err != nil && g.isTripped() {
		return n, errCalm
	}
	g.scan(p[:n])
	return n, err
}

// scan follows frame boundaries through b.
func (g *h2Guard) scan(b []byte) {
	for len(b) > 0 {
		switch {
		case g.preface > 0:
			k := min(g.preface, len(b))
			g.preface -= k
			b = b[k:]
		case g.skip > 0:
			k := min(int(g.skip), len(b))
			g.skip -= uint32(k)
			b = b[k:]
		default:
			k := copy(g.hdr[g.hn:], b)
			g.hn += k
			b = b[k:]
			if g.hn == len(g.hdr) {
				g.hn = 0
				length := uint32(g.hdr[0])<<16 | uint32(g.hdr[1])<<8 | uint32(g.hdr[2])
				g.skip = length
				g.frame(g.hdr[3], g.hdr[4], length)
			}
		}
	}
}

func (g *h2Guard) frame(typ, flags byte, length uint32) {
	switch typ {
	case frameRSTStream, framePriority, frameContinuation:
		g.charge(glitchFrame)
	case frameSettings, framePing:
		if flags&flagAck == 0 {
			g.charge(glitchFrame)
		}
	case frameData:
		if length == 0 && flags&flagEndStream == 0 {
			g.charge(glitchFrame)
		}
	}
	g.lastType = typ
}

// h2GuardTLS is the guard over a TLS connection: it lets the HTTP/2
// server see the TLS state under it (the server checks the version and
// cipher suite, RFC 9113 9.2, and fills Request.TLS).
type h2GuardTLS struct {
	*h2Guard
	tc *tls.Conn
}

func (g h2GuardTLS) ConnectionState() tls.ConnectionState { return g.tc.ConnectionState() }

// guarded returns the connection the HTTP/2 server should read.
func (g *h2Guard) guarded() net.Conn {
	if tc, ok := g.Conn.(*tls.Conn); ok {
		return h2GuardTLS{g, tc}
	}
	return g
}
