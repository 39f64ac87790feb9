package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weirproxy/weir/message"
)

// Weir's HTTP/2 server for client connections (RFC 9113).
//
// Each connection has three kinds of goroutine:
//
//   - the reader (the connection's own goroutine) reads frames, keeps the
//     flow-control books, and starts one goroutine per request stream;
//   - a stream's goroutine runs the general path (serveStream) with the
//     stream as its downstream;
//   - the writer sends what the others queued.
//
// Every frame Weir sends is appended to one buffer under the connection's
// lock; the writer takes the whole buffer at once. While it writes, more
// frames pile up, so under load the responses of many streams leave in
// one TLS record and one write(2). A response that is complete when its
// last body bytes are queued carries END_STREAM on its last frame. The
// h2Guard under the reader keeps charging floods against the glitch
// budget.

const (
	// h2WriteBacklog is how much a stream lets queue for the writer
	// before it waits for the writer to catch up.
	h2WriteBacklog = 256 << 10
	// h2ControlBacklog is how much may queue in all, control frames the
	// reader answers included: beyond it the client is not reading what
	// it asked for, and the connection ends.
	h2ControlBacklog = 4 << 20
	maxWindow        = 1<<31 - 1
	// h2CoalesceMax: with less than this queued, the writer yields once
	// before it writes, so that more frames join the write.
	h2CoalesceMax = 16 << 10
)

var (
	errStreamReset   = errors.New("http2: stream reset by the client")
	errStreamAborted = errors.New("http2: stream ended by Weir")
	errH2ConnClosed  = errors.New("http2: client connection closed")
	errH2BodyTimeout = &StatusError{Status: 408, Msg: "request body timeout"}
)

// h2Conn is one HTTP/2 client connection.
type h2Conn struct {
	c           *conn
	l           *H2Limits
	g           *h2Guard // over the client connection: the reader reads through it
	br          *bufio.Reader
	fr          *http2.Framer
	wtime       time.Duration // write timeout
	bodyTimeout time.Duration // limits.body_read_timeout
	wdl         time.Time     // the write deadline in force (the writer's)

	mu      sync.Mutex
	wake    sync.Cond // the writer waits here for frames
	room    sync.Cond // streams wait here for send window or buffer room
	wbuf    []byte    // frames queued for the writer
	spare   []byte
	gen     uint64 // counts the writer's takes of wbuf
	werr    error  // the client connection failed (no more writes)
	closing bool   // the writer sends what is queued, then stops
	streams map[uint32]*h2Stream
	maxID   uint32 // highest stream the client opened
	sendWin int64  // connection send window
	peerWin int64  // client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMax int    // client's SETTINGS_MAX_FRAME_SIZE
	recvWin int64  // connection receive window left
	recvAck int64  // received bytes consumed but not yet returned
	goaway  bool   // GOAWAY sent: no new streams
	running sync.WaitGroup
	wdone   chan struct{}
}

// h2Stream is one request stream, and the general path's downstream for
// it. Fields under "hc.mu" are shared with the reader.
type h2Stream struct {
	hc   *h2Conn
	id   uint32
	cond sync.Cond // on hc.mu: body bytes, reset, deadlines

	// under hc.mu
	in       []byte // request body received, not yet read
	inOff    int
	inEOF    bool  // END_STREAM received
	reset    error // the stream is over (client reset or connection end)
	rstSent  bool
	rstRecv  bool // the client reset the stream
	aborted  bool // the request body is no longer wanted
	recvWin  int64
	recvAck  int64
	declared int64 // content-length, -1 if none
	got      int64
	trailer  message.Header
	sendWin  int64
	lastAt   int    // offset in wbuf of this stream's last frame
	lastGen  uint64 // hc.gen when it was queued (0: none queued)
	rdl, wdl time.Time
	rtimer   *time.Timer
	wtimer   *time.Timer
	ended    bool // END_STREAM sent
	flowDL   bool // wdl was set by writeBody's wait for window, not by a tunnel
	bodyDL   bool // rdl was set by readBody's wait for body bytes, not by a tunnel

	// owned by the stream's goroutine
	fields    []hpack.HeaderField
	truncated bool // the header list was over the limit: answered 431
	noReqBody bool // the request's HEADERS ended the stream
	tunnel    bool // handed out as a net.Conn (CONNECT), which may outlive the stream: not reused
	wrote     bool
	noBody    bool
	hb        []byte // header block scratch
	lower     []byte
}

func newH2Conn(c *conn, g *h2Guard, l *H2Limits) *h2Conn {
	hc := &h2Conn{c: c, l: l, g: g, streams: map[uint32]*h2Stream{},
		sendWin: 65535, peerWin: 65535, peerMax: 16384, recvWin: int64(l.ConnWindow),
		wdone: make(chan struct{})}
	lim := &c.srv.handler.Load().Limits
	hc.wtime, hc.bodyTimeout = lim.WriteTimeout, lim.BodyReadTimeout
	hc.wake.L, hc.room.L = &hc.mu, &hc.mu
	hc.br = bufio.NewReaderSize(g, 16<<10)
	hc.fr = http2.NewFramer(nil, hc.br)
	hc.fr.SetMaxReadFrameSize(l.MaxReadFrameSize)
	hc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	hc.fr.MaxHeaderListSize = l.MaxHeaderListSize
	hc.fr.SetReuseFrames()
	return hc
}

// serveH2 serves an HTTP/2 connection until it ends.
func (c *conn) serveH2(nc net.Conn) {
	ls := c.ls
	l := &ls.opts.H2
	hc := newH2Conn(c, newH2Guard(nc, l), l)
	ls.track(hc, true)
	defer ls.track(hc, false)
	hc.serve()
}

// track registers an HTTP/2 connection for Shutdown's GOAWAY.
func (ls *listenerState) track(hc *h2Conn, add bool) {
	ls.h2mu.Lock()
	defer ls.h2mu.Unlock()
	if add {
		if ls.h2conns == nil {
			ls.h2conns = map[*h2Conn]struct{}{}
		}
		ls.h2conns[hc] = struct{}{}
		if ls.h2drain {
			hc.drain()
		}
	} else {
		delete(ls.h2conns, hc)
	}
}

// drainH2 sends GOAWAY on every HTTP/2 connection of the listener; each
// closes once its streams are done.
func (ls *listenerState) drainH2() {
	ls.h2mu.Lock()
	defer ls.h2mu.Unlock()
	ls.h2drain = true
	for hc := range ls.h2conns {
		hc.drain()
	}
}

func (hc *h2Conn) serve() {
	go hc.writeLoop()
	err := hc.readLoop()
	hc.mu.Lock()
	if code, send := goAwayCode(err); send && hc.werr == nil && (code != http2.ErrCodeNo || !hc.goaway) {
		hc.appendGoAway(code)
	}
	for _, st := range hc.streams {
		st.endLocked(errH2ConnClosed)
	}
	hc.closing = true
	hc.wake.Signal()
	hc.mu.Unlock()
	<-hc.wdone
	_ = hc.g.Close()
	hc.running.Wait()
}

// drain sends GOAWAY: streams already open finish, new ones are
// ignored, and the connection closes when the last one is done.
func (hc *h2Conn) drain() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.goaway || hc.closing {
		return
	}
	hc.appendGoAway(http2.ErrCodeNo)
	hc.wake.Signal()
	if len(hc.streams) == 0 {
		_ = hc.g.SetReadDeadline(time.Unix(1, 0))
	}
}

// goAwayCode maps how the reader ended to the GOAWAY that says so: none
// when the client went away or the socket failed, NO_ERROR for an idle
// or drained connection (nil), the code of a connection error, and
// PROTOCOL_ERROR for any other frame the framer refused.
func goAwayCode(err error) (http2.ErrCode, bool) {
	var ce http2.ConnectionError
	var ne net.Error
	switch {
	case err == nil:
		return http2.ErrCodeNo, true
	case errors.As(err, &ce):
		return http2.ErrCode(ce), true
	case errors.Is(err, http2.ErrFrameTooLarge):
		return http2.ErrCodeFrameSize, true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &ne):
		return 0, false
	}
	return http2.ErrCodeProtocol, true
}

func (hc *h2Conn) appendGoAway(code http2.ErrCode) {
	hc.goaway = true
	hc.wbuf = appendFrameHeader(hc.wbuf, 8, byte(http2.FrameGoAway), 0, 0)
	hc.wbuf = append(hc.wbuf, byte(hc.maxID>>24), byte(hc.maxID>>16), byte(hc.maxID>>8), byte(hc.maxID),
		byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
}

// writeLoop sends queued frames until the connection ends.
func (hc *h2Conn) writeLoop() {
	defer close(hc.wdone)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for {
		for len(hc.wbuf) == 0 && !hc.closing {
			hc.wake.Wait()
		}
		if len(hc.wbuf) == 0 || hc.werr != nil {
			return
		}
		if len(hc.wbuf) < h2CoalesceMax && !hc.closing {
			// The goroutine that woke the writer runs it next; streams
			// made ready by the same poll would each get a write of
			// their own. Yielding once lets them queue first.
			hc.mu.Unlock()
			runtime.Gosched()
			hc.mu.Lock()
		}
		buf := hc.wbuf
		hc.wbuf, hc.spare = hc.spare[:0], nil
		hc.gen++
		hc.mu.Unlock()
		if want := time.Now().Add(hc.wtime); mustMove(hc.wdl, want, hc.wtime, false) {
			hc.wdl = want
			_ = hc.g.SetWriteDeadline(want)
		}
		_, err := hc.g.Write(buf)
		hc.mu.Lock()
		if cap(buf) <= 2*h2WriteBacklog {
			hc.spare = buf[:0] // both buffers are reused while the connection lives
		}
		if err != nil {
			hc.werr = err
			for _, st := range hc.streams {
				st.endLocked(errH2ConnClosed)
			}
			// Wake the reader: the connection is over.
			_ = hc.g.SetReadDeadline(time.Unix(1, 0))
		}
		hc.room.Broadcast()
	}
}

func appendFrameHeader(b []byte, length int, typ, flags byte, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

func (hc *h2Conn) appendWindowUpdate(id uint32, n int64) {
	hc.wbuf = appendFrameHeader(hc.wbuf, 4, byte(http2.FrameWindowUpdate), 0, id)
	hc.wbuf = append(hc.wbuf, byte(n>>24)&0x7f, byte(n>>16), byte(n>>8), byte(n))
}

func (hc *h2Conn) appendRST(id uint32, code http2.ErrCode) {
	hc.wbuf = appendFrameHeader(hc.wbuf, 4, byte(http2.FrameRSTStream), 0, id)
	hc.wbuf = append(hc.wbuf, byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
}

// readLoop reads the client's frames until the connection ends; the error
// says how (a ConnectionError's code goes out in GOAWAY).
func (hc *h2Conn) readLoop() error {
	h := hc.c.srv.handler.Load()
	_ = hc.g.SetReadDeadline(time.Now().Add(h.Limits.HeaderReadTimeout))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(hc.br, pre[:]); err != nil {
		return err
	}
	if string(pre[:]) != http2.ClientPreface {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	l := hc.l
	hc.mu.Lock()
	settings := [...][2]uint32{
		{uint32(http2.SettingMaxConcurrentStreams), l.MaxConcurrentStreams},
		{uint32(http2.SettingInitialWindowSize), uint32(l.StreamWindow)},
		{uint32(http2.SettingMaxFrameSize), l.MaxReadFrameSize},
		{uint32(http2.SettingMaxHeaderListSize), l.MaxHeaderListSize},
	}
	hc.wbuf = appendFrameHeader(hc.wbuf, len(settings)*6, byte(http2.FrameSettings), 0, 0)
	for _, s := range settings {
		hc.wbuf = append(hc.wbuf, byte(s[0]>>8), byte(s[0]), byte(s[1]>>24), byte(s[1]>>16), byte(s[1]>>8), byte(s[1]))
	}
	if l.ConnWindow > 65535 {
		hc.appendWindowUpdate(0, int64(l.ConnWindow)-65535)
	}
	hc.wake.Signal()
	_ = hc.g.SetReadDeadline(time.Now().Add(l.IdleTimeout)) // until the first stream
	hc.mu.Unlock()

	first := true
	for {
		f, err := hc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				hc.g.charge(glitchProtocolError)
				hc.mu.Lock()
				if se.StreamID%2 == 1 && se.StreamID > hc.maxID {
					hc.maxID = se.StreamID // a refused request still used its id
				}
				hc.streamError(se.StreamID, se.Code)
				hc.wake.Signal()
				hc.mu.Unlock()
				continue
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				hc.mu.Lock()
				quiet := len(hc.streams) == 0
				hc.mu.Unlock()
				if quiet {
					return nil // idle, or drained: GOAWAY NO_ERROR
				}
			}
			return err
		}
		if first {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			first = false
		}
		hc.mu.Lock()
		err = hc.frame(f)
		if hc.br.Buffered() == 0 && len(hc.wbuf) > 0 {
			hc.wake.Signal()
		}
		if err == nil && len(hc.wbuf) > h2ControlBacklog {
			err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		hc.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// frame acts on one frame; hc.mu is held.
func (hc *h2Conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return hc.headers(f)
	case *http2.DataFrame:
		return hc.data(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		err := f.ForeachSetting(func(s http2.Setting) error {
			if err := s.Valid(); err != nil {
				return err
			}
			switch s.ID {
			case http2.SettingInitialWindowSize:
				delta := int64(s.Val) - hc.peerWin
				hc.peerWin = int64(s.Val)
				for _, st := range hc.streams {
					if st.sendWin += delta; st.sendWin > maxWindow {
						return http2.ConnectionError(http2.ErrCodeFlowControl)
					}
				}
			case http2.SettingMaxFrameSize:
				hc.peerMax = int(s.Val)
			}
			return nil
		})
		if err != nil {
			return err
		}
		hc.wbuf = appendFrameHeader(hc.wbuf, 0, byte(http2.FrameSettings), flagAck, 0)
		hc.room.Broadcast()
	case *http2.PingFrame:
		if !f.IsAck() {
			hc.wbuf = appendFrameHeader(hc.wbuf, 8, byte(http2.FramePing), flagAck, 0)
			hc.wbuf = append(hc.wbuf, f.Data[:]...)
		}
	case *http2.WindowUpdateFrame:
		n := int64(f.Increment)
		if f.StreamID == 0 {
			if hc.sendWin += n; hc.sendWin > maxWindow {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			hc.room.Broadcast()
			return nil
		}
		if f.StreamID > hc.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st := hc.streams[f.StreamID]; st != nil && st.reset == nil {
			if st.sendWin += n; st.sendWin > maxWindow {
				hc.streamError(f.StreamID, http2.ErrCodeFlowControl)
				return nil
			}
			hc.room.Broadcast()
		}
	case *http2.RSTStreamFrame:
		if f.StreamID > hc.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st := hc.streams[f.StreamID]; st != nil {
			st.rstSent = true // nothing more goes out on it
			st.rstRecv = true
			st.endLocked(errStreamReset)
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			hc.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.GoAwayFrame:
		// The client opens no more streams; those open finish.
	}
	return nil
}

// streamError resets stream id with code; hc.mu is held.
func (hc *h2Conn) streamError(id uint32, code http2.ErrCode) {
	st := hc.streams[id]
	if st == nil {
		hc.appendRST(id, code)
		return
	}
	if !st.rstSent {
		st.rstSent = true
		hc.appendRST(id, code)
	}
	st.endLocked(errStreamAborted)
}

// endLocked marks the stream over and wakes whatever waits on it.
func (st *h2Stream) endLocked(err error) {
	if st.reset == nil {
		st.reset = err
	}
	st.cond.Broadcast()
	st.hc.room.Broadcast()
}

func (hc *h2Conn) headers(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := hc.streams[id]; st != nil {
		// Trailers: they end the stream and carry no pseudo-fields.
		switch {
		case st.rstRecv:
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		case st.reset != nil:
			// Weir reset the stream; frames in flight are ignored.
		case st.inEOF:
			hc.streamError(id, http2.ErrCodeStreamClosed)
		case !f.StreamEnded() || len(f.PseudoFields()) > 0:
			hc.streamError(id, http2.ErrCodeProtocol)
		default:
			for _, hf := range f.RegularFields() {
				st.trailer.Add(message.S(hf.Name), message.S(hf.Value))
			}
			hc.endBody(st)
		}
		return nil
	}
	if id <= hc.maxID {
		// A stream that is over, or an idle one that a higher one
		// closed (RFC 9113 5.1.1).
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	hc.maxID = id
	if hc.goaway {
		return nil // after GOAWAY: ignored (RFC 9113 6.8)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		hc.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	if len(hc.streams) >= int(hc.l.MaxConcurrentStreams) {
		hc.g.charge(glitchFrame)
		hc.streamError(id, http2.ErrCodeRefusedStream)
		return nil
	}
	declared, ok := checkRequestFields(f)
	if !ok {
		hc.g.charge(glitchProtocolError)
		hc.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	if f.StreamEnded() && declared > 0 {
		hc.streamError(id, http2.ErrCodeProtocol) // a length, and no body
		return nil
	}
	st := h2StreamPool.Get().(*h2Stream)
	*st = h2Stream{hc: hc, id: id, fields: f.Fields, truncated: f.Truncated, declared: declared,
		recvWin: int64(hc.l.StreamWindow), sendWin: hc.peerWin, inEOF: f.StreamEnded(),
		noReqBody: f.StreamEnded(), in: st.in[:0], hb: st.hb[:0], lower: st.lower[:0]}
	st.cond.L = &hc.mu
	if len(hc.streams) == 0 {
		_ = hc.g.SetReadDeadline(time.Time{}) // the idle timeout (see forget)
	}
	hc.streams[id] = st
	hc.running.Add(1)
	go hc.runStream(st)
	return nil
}

// checkRequestFields checks a request's pseudo-fields (RFC 9113 8.3.1)
// and content-length, and returns the declared length (-1: none).
func checkRequestFields(f *http2.MetaHeadersFrame) (int64, bool) {
	var method, scheme, path, authority, protocol bool
	connect := false
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method, connect = true, hf.Value == "CONNECT"
		case ":scheme":
			scheme = true
		case ":path":
			path = hf.Value != ""
		case ":authority":
			authority = true
		case ":protocol":
			protocol = true // extended CONNECT is not offered
		default:
			return 0, false // :status in a request
		}
	}
	if !method || protocol {
		return 0, false
	}
	if connect {
		if !authority || scheme || path {
			return 0, false
		}
	} else if !scheme || !path {
		return 0, false
	}
	declared := int64(-1)
	for _, hf := range f.RegularFields() {
		if hf.Name != "content-length" {
			continue
		}
		n, err := strconv.ParseUint(hf.Value, 10, 63)
		if err != nil || hf.Value == "" || (declared >= 0 && int64(n) != declared) {
			return 0, false
		}
		declared = int64(n)
	}
	return declared, true
}

// data takes one DATA frame; hc.mu is held.
func (hc *h2Conn) data(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	if n > hc.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	hc.recvWin -= n
	st := hc.streams[id]
	if st == nil || st.inEOF || st.reset != nil {
		if id > hc.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		hc.giveBack(nil, n)
		if st == nil || st.inEOF || st.rstRecv {
			// A closed stream (RFC 9113 5.1); DATA still in flight
			// after Weir reset a stream is only counted.
			hc.g.charge(glitchFrame)
			if st == nil || st.rstRecv {
				hc.appendRST(id, http2.ErrCodeStreamClosed)
			} else {
				hc.streamError(id, http2.ErrCodeStreamClosed)
			}
		}
		return nil
	}
	if n > st.recvWin {
		hc.giveBack(nil, n)
		hc.streamError(id, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWin -= n
	p := f.Data()
	if pad := n - int64(len(p)); pad > 0 {
		hc.giveBack(st, pad)
	}
	st.got += int64(len(p))
	if st.declared >= 0 && st.got > st.declared {
		hc.giveBack(nil, int64(len(p)))
		hc.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	if st.aborted {
		hc.giveBack(st, int64(len(p)))
	} else if len(p) > 0 {
		if st.inOff > 0 {
			// Keep only the unread bytes, so the buffer stays within the
			// stream window however the reader consumes it.
			st.in = st.in[:copy(st.in, st.in[st.inOff:])]
			st.inOff = 0
		}
		st.in = append(st.in, p...)
	}
	if f.StreamEnded() {
		hc.endBody(st)
		return nil
	}
	st.cond.Broadcast()
	return nil
}

// endBody takes the end of a request body (END_STREAM); hc.mu is held.
func (hc *h2Conn) endBody(st *h2Stream) {
	if st.declared >= 0 && st.got != st.declared {
		hc.streamError(st.id, http2.ErrCodeProtocol)
		return
	}
	st.inEOF = true
	st.cond.Broadcast()
	if st.ended {
		hc.forget(st) // the response was done already
	}
}

// giveBack returns n consumed bytes of receive window, to the
// connection and, unless st is nil or its body is over, to the stream;
// WINDOW_UPDATE goes out once half a window is owed. hc.mu is held.
func (hc *h2Conn) giveBack(st *h2Stream, n int64) {
	hc.recvAck += n
	if hc.recvAck >= int64(hc.l.ConnWindow)/2 {
		hc.appendWindowUpdate(0, hc.recvAck)
		hc.recvWin += hc.recvAck
		hc.recvAck = 0
	}
	if st == nil || st.inEOF || st.reset != nil {
		return
	}
	st.recvAck += n
	if st.recvAck >= int64(hc.l.StreamWindow)/2 {
		hc.appendWindowUpdate(st.id, st.recvAck)
		st.recvWin += st.recvAck
		st.recvAck = 0
	}
}

// forget removes a stream whose exchange is over; hc.mu is held.
func (hc *h2Conn) forget(st *h2Stream) {
	if hc.streams[st.id] != st {
		return
	}
	delete(hc.streams, st.id)
	if len(hc.streams) == 0 {
		if hc.goaway {
			_ = hc.g.SetReadDeadline(time.Unix(1, 0))
		} else {
			_ = hc.g.SetReadDeadline(time.Now().Add(hc.l.IdleTimeout))
		}
	}
}

// runStream is a stream's goroutine.
func (hc *h2Conn) runStream(st *h2Stream) {
	defer hc.running.Done()
	c := hc.c
	h := c.srv.handler.Load()
	s := sessPool.Get().(*Session)
	s.reset()
	s.Client, s.Local, s.TLS, s.TLSInfo = c.client, c.local, c.tls, c.tlsInfo
	s.Start = time.Now()
	s.ds = st
	req := &s.Req
	req.Scheme = "http"
	if c.tls {
		req.Scheme = "https"
	}
	req.ProtoMajor, req.ProtoMinor = 2, 0
	var host []byte
	size := 0
	for i := range st.fields {
		hf := &st.fields[i]
		size += len(hf.Name) + len(hf.Value) + 32
		switch hf.Name {
		case ":method":
			req.Method = message.S(hf.Value)
		case ":path":
			req.Target = message.S(hf.Value)
		case ":authority":
			req.Authority = message.S(hf.Value)
		case ":scheme":
		case "host":
			host = message.S(hf.Value)
		default:
			req.Header.Add(message.S(hf.Name), message.S(hf.Value))
		}
	}
	if len(req.Authority) == 0 {
		req.Authority = host
	}
	req.Path = req.Target
	switch {
	case st.declared >= 0:
		req.ContentLength = st.declared
	case !st.noReqBody:
		req.ContentLength = -1
	}
	if st.truncated {
		size = int(hc.l.MaxHeaderListSize) + 1
	}
	serveMux(h, s, st, size, int(hc.l.MaxHeaderListSize))
	hc.endStream(st)
	s.reset()
	s.ds = nil
	sessPool.Put(s)
	// Nothing reaches the stream any more: the reader forgot it, and a
	// deadline timer that fires late only wakes waits that are over.
	st.fields = nil
	if cap(st.in) > 64<<10 {
		st.in = nil
	}
	if !st.tunnel {
		h2StreamPool.Put(st)
	}
}

var h2StreamPool = sync.Pool{New: func() any { return new(h2Stream) }}

// endStream closes the stream once its goroutine is done: a response
// left unfinished is reset (INTERNAL_ERROR), and a request body still
// coming is refused with NO_ERROR (RFC 9113 8.1).
func (hc *h2Conn) endStream(st *h2Stream) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	st.stopTimers()
	if st.reset == nil {
		switch {
		case !st.ended:
			hc.appendRST(st.id, http2.ErrCodeInternal)
			st.rstSent = true
		case !st.inEOF:
			hc.appendRST(st.id, http2.ErrCodeNo)
			st.rstSent = true
		}
		hc.wake.Signal()
	}
	st.endLocked(errStreamAborted)
	hc.forget(st)
}

func (st *h2Stream) stopTimers() {
	if st.rtimer != nil {
		st.rtimer.Stop()
	}
	if st.wtimer != nil {
		st.wtimer.Stop()
	}
}

// The downstream interface.

func (st *h2Stream) readBody(p []byte) (int, error) {
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for st.inOff == len(st.in) {
		switch {
		case st.aborted:
			return 0, errBodyClosed
		case st.inEOF:
			return 0, io.EOF
		case st.reset != nil:
			return 0, st.reset
		case !st.rdl.IsZero() && !time.Now().Before(st.rdl):
			if st.bodyDL {
				return 0, errH2BodyTimeout
			}
			return 0, os.ErrDeadlineExceeded
		case st.rdl.IsZero() && !st.tunnel:
			// limits.body_read_timeout bounds each wait for request
			// body bytes, as on HTTP/1.1.
			st.setDeadlineLocked(&st.rdl, &st.rtimer, time.Now().Add(hc.bodyTimeout))
			st.bodyDL = true
		}
		st.cond.Wait()
	}
	if st.bodyDL {
		st.bodyDL = false
		st.setDeadlineLocked(&st.rdl, &st.rtimer, time.Time{})
	}
	n := copy(p, st.in[st.inOff:])
	st.inOff += n
	hc.giveBack(st, int64(n))
	hc.wake.Signal()
	return n, nil
}

func (st *h2Stream) abortBody() {
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	st.aborted = true
	if n := len(st.in) - st.inOff; n > 0 {
		hc.giveBack(st, int64(n))
		st.in, st.inOff = st.in[:0], 0
	}
	st.cond.Broadcast()
}

func (st *h2Stream) reqTrailer() *message.Header {
	if len(st.trailer.Fields) == 0 {
		return nil
	}
	return &st.trailer
}

func (st *h2Stream) started() bool { return st.wrote }

func (st *h2Stream) writeHead(s *Session, resp *message.Response, length int64) error {
	status := resp.Status
	st.noBody = noResponseBody(s, status)
	b := appendHpackStatus(st.hb[:0], status)
	for i := range resp.Header.Fields {
		if f := &resp.Header.Fields[i]; muxKeepsField(f.Name, st.noBody) {
			b, st.lower = appendHpackField(b, st.lower, f.Name, f.Value)
		}
	}
	if !st.noBody && length >= 0 {
		var d [20]byte
		b = appendHpackInt(b, 0, 4, 28) // content-length
		b = appendHpackString(b, strconv.AppendInt(d[:0], length, 10))
	}
	if alt := st.hc.c.altSvc; alt != "" {
		b, st.lower = appendHpackField(b, st.lower, message.S("alt-svc"), message.S(alt))
	}
	st.hb = b
	st.wrote = true
	return st.queueHeaders(b, false)
}

// queueHeaders queues a header block as HEADERS and CONTINUATION frames.
func (st *h2Stream) queueHeaders(block []byte, end bool) error {
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if err := st.writable(); err != nil {
		return err
	}
	var flags byte
	if end {
		flags = flagEndStream
		st.ended = true
	}
	st.lastAt, st.lastGen = len(hc.wbuf), hc.gen+1
	typ := byte(http2.FrameHeaders)
	for {
		n := min(len(block), hc.peerMax)
		f := flags
		if n == len(block) {
			f |= flagEndHeaders
		}
		hc.wbuf = appendFrameHeader(hc.wbuf, n, typ, f, st.id)
		hc.wbuf = append(hc.wbuf, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			break
		}
		typ, flags = byte(http2.FrameContinuation), 0
	}
	if end {
		hc.wake.Signal()
		if st.inEOF {
			hc.forget(st)
		}
	}
	return nil
}

// writable reports why nothing more may be sent on the stream; hc.mu is
// held.
func (st *h2Stream) writable() error {
	switch {
	case st.hc.werr != nil:
		return st.hc.werr
	case st.reset != nil:
		return st.reset
	case st.ended:
		return errStreamAborted
	case !st.wdl.IsZero() && !time.Now().Before(st.wdl):
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (st *h2Stream) writeBody(p []byte) error {
	if st.noBody {
		return nil
	}
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for len(p) > 0 {
		if err := st.writable(); err != nil {
			return err
		}
		if st.sendWin <= 0 || hc.sendWin <= 0 || len(hc.wbuf) >= h2WriteBacklog {
			if st.wdl.IsZero() && (st.sendWin <= 0 || hc.sendWin <= 0) {
				// A client that stops granting window holds the stream
				// (and its peer connection) for at most the write
				// timeout, as a client that stops reading would.
				st.setDeadlineLocked(&st.wdl, &st.wtimer, time.Now().Add(hc.wtime))
				st.flowDL = true
			}
			hc.wake.Signal()
			hc.room.Wait()
			continue
		}
		if st.flowDL {
			st.flowDL = false
			st.setDeadlineLocked(&st.wdl, &st.wtimer, time.Time{})
		}
		n := int(min(int64(len(p)), st.sendWin, hc.sendWin, int64(hc.peerMax)))
		st.lastAt, st.lastGen = len(hc.wbuf), hc.gen+1
		hc.wbuf = appendFrameHeader(hc.wbuf, n, byte(http2.FrameData), 0, st.id)
		hc.wbuf = append(hc.wbuf, p[:n]...)
		p = p[n:]
		st.sendWin -= int64(n)
		hc.sendWin -= int64(n)
	}
	return nil
}

func (st *h2Stream) flush() error {
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.wake.Signal()
	return st.writable()
}

func (st *h2Stream) finish(trailer *message.Header) error {
	if trailer != nil && len(trailer.Fields) > 0 {
		b := st.hb[:0]
		for i := range trailer.Fields {
			f := &trailer.Fields[i]
			if !connectionSpecific(f.Name) {
				b, st.lower = appendHpackField(b, st.lower, f.Name, f.Value)
			}
		}
		st.hb = b
		return st.queueHeaders(b, true)
	}
	hc := st.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if err := st.writable(); err != nil {
		return err
	}
	if st.lastGen == hc.gen+1 {
		// This stream's last frame still waits in the buffer: it
		// carries END_STREAM.
		hc.wbuf[st.lastAt+4] |= flagEndStream
	} else {
		hc.wbuf = appendFrameHeader(hc.wbuf, 0, byte(http2.FrameData), flagEndStream, st.id)
	}
	st.ended = true
	hc.wake.Signal()
	if st.inEOF {
		hc.forget(st)
	}
	return nil
}

// The stream as a tunnel (CONNECT).

func (st *h2Stream) accept(t *Tunnel, header *message.Header) (net.Conn, error) {
	var resp message.Response
	resp.Status = 200
	if header != nil {
		resp.Header.Fields = header.Fields
	}
	if err := st.writeHead(t.s, &resp, -1); err != nil {
		return nil, err
	}
	if err := st.flush(); err != nil {
		return nil, err
	}
	st.tunnel = true
	return &h2StreamConn{st: st, local: addrOf(t.s.Local), remote: addrOf(t.s.Client)}, nil
}

func (st *h2Stream) refuse(t *Tunnel, status int, header *message.Header, body []byte) error {
	return writeLocalDown(t.s, st, status, header, body)
}

// h2StreamConn is a CONNECT stream as a net.Conn.
type h2StreamConn struct {
	st            *h2Stream
	local, remote net.Addr
}

func (c *h2StreamConn) Read(p []byte) (int, error) { return c.st.readBody(p) }

func (c *h2StreamConn) Write(p []byte) (int, error) {
	if err := c.st.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), c.st.flush()
}

// CloseWrite ends the stream toward the client (END_STREAM).
func (c *h2StreamConn) CloseWrite() error {
	hc := c.st.hc
	hc.mu.Lock()
	ended := c.st.ended || c.st.reset != nil
	hc.mu.Unlock()
	if ended {
		return nil
	}
	return c.st.finish(nil)
}

func (c *h2StreamConn) Close() error {
	_ = c.CloseWrite()
	c.st.abortBody()
	return nil
}

func (c *h2StreamConn) LocalAddr() net.Addr  { return c.local }
func (c *h2StreamConn) RemoteAddr() net.Addr { return c.remote }
func (c *h2StreamConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
func (c *h2StreamConn) SetReadDeadline(t time.Time) error {
	c.st.setDeadline(&c.st.rdl, &c.st.rtimer, t)
	return nil
}
func (c *h2StreamConn) SetWriteDeadline(t time.Time) error {
	c.st.setDeadline(&c.st.wdl, &c.st.wtimer, t)
	return nil
}

// setDeadline sets a read or write deadline; a timer wakes the waits
// when it passes.
func (st *h2Stream) setDeadline(dl *time.Time, tm **time.Timer, t time.Time) {
	st.hc.mu.Lock()
	defer st.hc.mu.Unlock()
	if dl == &st.rdl {
		st.bodyDL = false
	} else {
		st.flowDL = false
	}
	st.setDeadlineLocked(dl, tm, t)
}

// setDeadlineLocked is setDeadline with hc.mu held.
func (st *h2Stream) setDeadlineLocked(dl *time.Time, tm **time.Timer, t time.Time) {
	hc := st.hc
	*dl = t
	switch {
	case t.IsZero():
		if *tm != nil {
			(*tm).Stop()
		}
	case *tm != nil:
		// The stream's timer is reused: body and window waits set and
		// clear a deadline around every wait.
		(*tm).Reset(time.Until(t))
	default:
		*tm = time.AfterFunc(time.Until(t), func() {
			hc.mu.Lock()
			st.cond.Broadcast()
			hc.room.Broadcast()
			hc.mu.Unlock()
		})
	}
	st.cond.Broadcast()
	hc.room.Broadcast()
}
