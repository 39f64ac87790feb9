package testutil

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Action is what the recording origin does for one request it read.
type Action struct {
	// Delay, when positive, is waited before anything is sent (a slow
	// origin).
	Delay time.Duration
	// Write is sent as it is: a scripted, possibly broken, response.
	Write []byte
	// PerByte, when positive, sends Write one byte at a time, paced.
	PerByte time.Duration
	// Pause, when positive, stops for that long after PauseAfter bytes of
	// Write (a gap in the middle of a response).
	Pause      time.Duration
	PauseAfter int
	// Close closes the connection after Write; Reset closes it with a TCP
	// reset (SO_LINGER 0).
	Close, Reset bool
	// Hang sends Write and then answers nothing more on this connection:
	// later requests are still read and recorded, and the connection
	// stays open until its peer closes it or the recorder is closed.
	Hang bool
	// Then, when set, is called once Write was sent, or failed.
	Then func()
}

// Responder decides the Action for the i-th request (counted from 0 over
// all connections) the recorder read.
type Responder func(i int, req *SimpleRequest) Action

// OK answers every request with 200 and the body "response N", N being
// the request's index; it lets a test see which request an answer was for.
func OK(i int, _ *SimpleRequest) Action { return Action{Write: OKResponse(i)} }

// OKResponse is the response OK sends for request i.
func OKResponse(i int) []byte {
	body := "response " + strconv.Itoa(i)
	return []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// Recorder is a raw origin: a TCP listener that keeps every byte that
// reached it, per connection, splits what it got into requests with the
// simple reader (ParseSimple), and answers each as its Responder says.
// Whatever Weir forwards is on record, so a smuggled request cannot hide.
type Recorder struct {
	Addr    string
	ln      net.Listener
	respond Responder

	mu    sync.Mutex
	conns []*RecConn
	reqs  []*SimpleRequest
	n     int // requests read, Take included
	open  map[net.Conn]struct{}

	accepted atomic.Int64
	active   atomic.Int64
	wg       sync.WaitGroup
	done     chan struct{}
	once     sync.Once
}

// RecConn is what one connection brought.
type RecConn struct {
	Raw      []byte
	Requests []*SimpleRequest
	// Junk is what was left when the connection ended: bytes that are no
	// complete request (a cut-off body, or garbage).
	Junk []byte
}

// NewRecorder starts a recording origin on a loopback port; it is closed
// when the test ends. A nil respond means OK.
func NewRecorder(t testing.TB, respond Responder) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if respond == nil {
		respond = OK
	}
	r := &Recorder{Addr: ln.Addr().String(), ln: ln, respond: respond,
		open: map[net.Conn]struct{}{}, done: make(chan struct{})}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		select {
		case <-r.done:
			r.mu.Unlock()
			c.Close()
			return
		default:
		}
		rc := &RecConn{}
		r.conns = append(r.conns, rc)
		r.open[c] = struct{}{}
		r.accepted.Add(1)
		r.active.Add(1)
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(c, rc)
	}
}

func (r *Recorder) serve(c net.Conn, rc *RecConn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.open, c)
		r.mu.Unlock()
		r.active.Add(-1)
		r.wg.Done()
	}()
	buf := make([]byte, 64<<10)
	var pending []byte
	hung := false
	for {
		n, err := c.Read(buf)
		if n > 0 {
			r.mu.Lock()
			rc.Raw = append(rc.Raw, buf[:n]...)
			r.mu.Unlock()
			pending = append(pending, buf[:n]...)
			for {
				req, k, ok := ParseSimple(pending)
				if !ok {
					break
				}
				pending = pending[k:]
				r.mu.Lock()
				i := r.n
				r.n++
				r.reqs = append(r.reqs, req)
				rc.Requests = append(rc.Requests, req)
				r.mu.Unlock()
				if hung {
					continue
				}
				a := r.respond(i, req)
				if !r.act(c, a) {
					r.setJunk(rc, pending)
					return
				}
				hung = a.Hang
			}
		}
		if err != nil {
			r.setJunk(rc, pending)
			return
		}
	}
}

func (r *Recorder) setJunk(rc *RecConn, p []byte) {
	r.mu.Lock()
	rc.Junk = append([]byte(nil), p...)
	r.mu.Unlock()
}

// act carries out a; it reports whether the connection stays open.
func (r *Recorder) act(c net.Conn, a Action) bool {
	if a.Then != nil {
		defer a.Then()
	}
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.done:
			return false
		}
	}
	_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	w := a.Write
	for len(w) > 0 {
		n := len(w)
		if a.PerByte > 0 {
			n = 1
		}
		if a.Pause > 0 && a.PauseAfter > 0 && len(a.Write)-len(w) < a.PauseAfter {
			n = min(n, a.PauseAfter-(len(a.Write)-len(w)))
		}
		if _, err := c.Write(w[:n]); err != nil {
			return false
		}
		w = w[n:]
		var wait time.Duration
		if a.PerByte > 0 {
			wait = a.PerByte
		}
		if a.Pause > 0 && len(a.Write)-len(w) == a.PauseAfter {
			wait = a.Pause
		}
		if wait > 0 && len(w) > 0 {
			// Pacing a slow origin: this is the behaviour under test.
			select {
			case <-time.After(wait):
			case <-r.done:
				return false
			}
		}
	}
	switch {
	case a.Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return false
	case a.Close:
		return false
	}
	return true
}

// Requests returns the requests read so far, in order.
func (r *Recorder) Requests() []*SimpleRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*SimpleRequest(nil), r.reqs...)
}

// Count returns how many requests were read so far.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// Conns returns a copy of what each connection brought so far.
func (r *Recorder) Conns() []RecConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecConn, len(r.conns))
	for i, c := range r.conns {
		out[i] = RecConn{Raw: append([]byte(nil), c.Raw...), Requests: append([]*SimpleRequest(nil), c.Requests...),
			Junk: append([]byte(nil), c.Junk...)}
	}
	return out
}

// Take returns the record of every connection so far, like Conns, and
// forgets it, so that a long run (a fuzzer) keeps memory bounded. It is
// meant for when no connection is open.
func (r *Recorder) Take() []RecConn {
	out := r.Conns()
	r.mu.Lock()
	r.conns, r.reqs = nil, nil
	r.mu.Unlock()
	return out
}

// Accepted returns how many connections were accepted.
func (r *Recorder) Accepted() int { return int(r.accepted.Load()) }

// Active returns how many connections are still open.
func (r *Recorder) Active() int { return int(r.active.Load()) }

// WaitConnsClosed waits until every accepted connection was closed by its
// peer (Weir), and reports whether that happened within timeout.
func (r *Recorder) WaitConnsClosed(timeout time.Duration) bool {
	return Eventually(timeout, func() bool { return r.active.Load() == 0 })
}

// Close stops accepting, closes every connection and waits for the
// recorder's goroutines.
func (r *Recorder) Close() {
	r.once.Do(func() {
		r.mu.Lock()
		close(r.done)
		r.ln.Close()
		for c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
}
