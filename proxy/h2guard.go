package proxy

import (
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Glitch costs: what one suspicious event takes from an HTTP/2
// connection's budget (see H2Limits).
const (
	glitchFrame         = 1   // RST_STREAM, PING, SETTINGS, PRIORITY, empty DATA, CONTINUATION
	glitchProtocolError = 10  // a stream or connection error the server counted
	glitchHeaderList    = 100 // a header list over the limit (HPACK bomb)
)

// Frame types and flags the guard looks at (RFC 9113 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagAck           = 0x1
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
	frameHeaderLen    = 9
	settingLen        = 6
)

var (
	// errCalm and errProtocol are what the guard's Read returns once it
	// gave up on a connection: the HTTP/2 server answers a
	// ConnectionError with GOAWAY carrying its code, then closes.
	errCalm     = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	errProtocol = http2.ConnectionError(http2.ErrCodeProtocol)
)

// h2Guard sits between an HTTP/2 client connection and the server. It
// follows the frames in the bytes the server reads and:
//
//   - charges a token bucket for frames that cost the server work
//     without doing the client any good, so that Rapid Reset
//     (CVE-2023-44487), CONTINUATION, PING, SETTINGS and empty-frame
//     floods end in GOAWAY ENHANCE_YOUR_CALM;
//   - decodes every header block with a shadow HPACK decoder (the same
//     inputs keep it in step with the server's), charging header lists
//     over the limit (HPACK bombs) and refusing connection-specific
//     fields and a TE other than "trailers" (RFC 9113 8.2.2) with GOAWAY
//     PROTOCOL_ERROR before the server sees the block;
//   - passes a SETTINGS frame only once it is whole, with every earlier
//     duplicate of a setting renamed to an unknown (ignored) identifier:
//     RFC 9113 6.5.3 has the values processed in order, and the server
//     refuses duplicates outright.
type h2Guard struct {
	net.Conn
	buf   []byte // bytes read from the client
	ready int    // buf[:ready] may go to the server
	scan  int    // buf[:scan] has been looked at
	// state of the frame being scanned
	preface   int // client preface bytes still to pass
	inFrame   bool
	typ       byte
	flags     byte
	length    int
	pos       int // payload bytes scanned
	pad       int // HEADERS padding length
	skipFront int // HEADERS pad-length and priority bytes
	frameAt   int // offset in buf of the current frame's header

	dec       *hpack.Decoder
	listSize  int
	maxList   int
	maxFrame  int
	badFields bool

	mu      sync.Mutex
	tokens  float64
	budget  float64
	rate    float64
	last    time.Time
	tripped error
}

func newH2Guard(nc net.Conn, l *H2Limits) *h2Guard {
	g := &h2Guard{Conn: nc, preface: len(http2.ClientPreface), tokens: float64(l.GlitchBudget),
		budget: float64(l.GlitchBudget), rate: float64(l.GlitchRate), last: time.Now(),
		maxList: int(l.MaxHeaderListSize), maxFrame: int(l.MaxReadFrameSize)}
	g.dec = hpack.NewDecoder(4096, g.field)
	g.dec.SetMaxStringLength(g.maxList)
	return g
}

// charge takes cost points; when none are left it trips the guard and
// wakes the server's read so that it sees errCalm.
func (g *h2Guard) charge(cost int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tripped != nil {
		return
	}
	now := time.Now()
	g.tokens = min(g.budget, g.tokens+now.Sub(g.last).Seconds()*g.rate)
	g.last = now
	g.tokens -= float64(cost)
	if g.tokens < 0 {
		g.tripped = errCalm
		_ = g.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (g *h2Guard) fail(err error) {
	g.mu.Lock()
	if g.tripped == nil {
		g.tripped = err
	}
	g.mu.Unlock()
}

func (g *h2Guard) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}

func (g *h2Guard) Read(p []byte) (int, error) {
	for g.ready == 0 {
		if err := g.failed(); err != nil {
			return 0, err
		}
		if g.buf == nil {
			g.buf = make([]byte, 0, 4<<10)
		}
		if len(g.buf) == cap(g.buf) {
			// Only a held SETTINGS frame fills the buffer; it is at most
			// a frame header plus maxFrame.
			nb := make([]byte, len(g.buf), 2*cap(g.buf))
			copy(nb, g.buf)
			g.buf = nb
		}
		n, err := g.Conn.Read(g.buf[len(g.buf):cap(g.buf)])
		g.buf = g.buf[:len(g.buf)+n]
		g.advance()
		if g.ready > 0 {
			break
		}
		if err != nil {
			if ferr := g.failed(); ferr != nil {
				return 0, ferr
			}
			return 0, err
		}
	}
	n := copy(p, g.buf[:g.ready])
	g.ready -= n
	g.scan -= n
	g.frameAt -= n
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// advance scans new bytes and moves ready as far as it may go.
func (g *h2Guard) advance() {
	for g.scan < len(g.buf) && g.failed() == nil {
		b := g.buf[g.scan:]
		switch {
		case g.preface > 0:
			k := min(g.preface, len(b))
			g.preface -= k
			g.scan += k
			g.ready = g.scan
			continue
		case !g.inFrame:
			if len(b) < frameHeaderLen {
				return // a partial frame header waits for the rest
			}
			g.frameAt = g.scan
			g.length = int(b[0])<<16 | int(b[1])<<8 | int(b[2])
			g.typ, g.flags = b[3], b[4]
			g.scan += frameHeaderLen
			g.inFrame, g.pos, g.pad, g.skipFront = true, 0, 0, 0
			g.frame()
			if !g.held() {
				g.ready = g.scan
			}
		default:
			k := min(g.length-g.pos, len(b))
			switch {
			case g.held():
				if len(g.buf)-g.frameAt-frameHeaderLen < g.length {
					return // a SETTINGS frame goes on only whole
				}
				g.dedupSettings(g.buf[g.frameAt+frameHeaderLen : g.frameAt+frameHeaderLen+g.length])
			case g.typ == frameHeaders || g.typ == frameContinuation:
				g.headerBytes(b[:k])
				if g.failed() != nil {
					// The server never gets this frame whole.
					g.ready = max(g.frameAt, 0)
					return
				}
			}
			g.pos += k
			g.scan += k
			g.ready = g.scan
		}
		if g.pos == g.length {
			g.inFrame = false
			if (g.typ == frameHeaders || g.typ == frameContinuation) && g.flags&flagEndHeaders != 0 {
				g.endBlock()
				if g.failed() != nil {
					g.ready = max(g.frameAt, 0)
					return
				}
			}
		}
	}
}

// held reports a frame passed on only once whole: a SETTINGS frame
// (not an acknowledgement) of a size the server accepts.
func (g *h2Guard) held() bool {
	return g.typ == frameSettings && g.flags&flagAck == 0 && g.length > 0 && g.length <= g.maxFrame
}

// frame charges the budget for a frame header just scanned.
func (g *h2Guard) frame() {
	switch g.typ {
	case frameRSTStream, framePriority, frameContinuation:
		g.charge(glitchFrame)
	case frameSettings, framePing:
		if g.flags&flagAck == 0 {
			g.charge(glitchFrame)
		}
	case frameData:
		if g.length == 0 && g.flags&flagEndStream == 0 {
			g.charge(glitchFrame)
		}
	case frameHeaders:
		g.listSize, g.badFields = 0, false
		if g.flags&flagPriority != 0 {
			g.skipFront = 5
		}
		if g.flags&flagPadded != 0 {
			g.skipFront++
			g.pad = -1 // read from the first payload byte
		}
	}
}

// headerBytes feeds header block bytes (within one frame's payload) to
// the shadow decoder, leaving out padding and priority fields.
func (g *h2Guard) headerBytes(b []byte) {
	pos := g.pos
	for len(b) > 0 {
		if g.typ == frameHeaders && pos < g.skipFront {
			if pos == 0 && g.pad == -1 {
				g.pad = int(b[0])
			}
			k := min(g.skipFront-pos, len(b))
			pos += k
			b = b[k:]
			continue
		}
		end := len(b)
		if g.typ == frameHeaders && g.pad > 0 {
			// The last pad bytes of the payload are not header block.
			if room := g.length - g.pad - pos; room < end {
				end = max(room, 0)
			}
		}
		if end > 0 {
			if _, err := g.dec.Write(b[:end]); err != nil {
				g.fail(errProtocol)
				return
			}
		}
		pos += len(b)
		b = nil
	}
}

// field checks one decoded header field.
func (g *h2Guard) field(f hpack.HeaderField) {
	g.listSize += len(f.Name) + len(f.Value) + 32
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.badFields = true
	case "te":
		if f.Value != "trailers" {
			g.badFields = true
		}
	}
}

// endBlock decides on a whole header block.
func (g *h2Guard) endBlock() {
	if err := g.dec.Close(); err != nil {
		g.fail(errProtocol)
		return
	}
	if g.badFields {
		g.fail(errProtocol)
		return
	}
	if g.listSize > g.maxList {
		g.charge(glitchHeaderList)
	}
	g.listSize = 0
}

// dedupSettings renames every setting that a later entry of the same
// frame overrides to a distinct unknown identifier, which receivers
// ignore (RFC 9113 6.5.2).
func (g *h2Guard) dedupSettings(p []byte) {
	if len(p)%settingLen != 0 {
		return // the server answers FRAME_SIZE_ERROR
	}
	n := len(p) / settingLen
	for i := 0; i < n; i++ {
		id := uint16(p[i*settingLen])<<8 | uint16(p[i*settingLen+1])
		for j := i + 1; j < n; j++ {
			if uint16(p[j*settingLen])<<8|uint16(p[j*settingLen+1]) == id {
				unknown := 0xf000 + i
				p[i*settingLen], p[i*settingLen+1] = byte(unknown>>8), byte(unknown)
				break
			}
		}
	}
}
