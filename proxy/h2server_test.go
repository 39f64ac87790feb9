package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/upstream"
)

// h2Response is what a raw client saw of one stream.
type h2Response struct {
	status  string
	header  map[string]string
	body    []byte
	frames  []string // "HEADERS", "DATA n", with "+END" on the frame that ended the stream
	trailer map[string]string
}

// readH2Response reads frames until stream id ends, answering flow
// control as a client with a window of win bytes would: it sends
// WINDOW_UPDATE only for bytes it took, and fails if Weir sends more
// than the window allows.
func readH2Response(t *testing.T, nc net.Conn, fr *http2.Framer, id uint32, win int) *h2Response {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := &h2Response{header: map[string]string{}}
	avail := win
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream %d: %v (so far %v)", id, err, r.frames)
		}
		if f.Header().StreamID != id {
			continue
		}
		end := f.Header().Flags.Has(http2.FlagDataEndStream)
		mark := ""
		if end {
			mark = "+END"
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			dst := r.header
			if r.status != "" {
				r.trailer = map[string]string{}
				dst = r.trailer
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					r.status = hf.Value
				} else {
					dst[hf.Name] = hf.Value
				}
			}
			r.frames = append(r.frames, "HEADERS"+mark)
		case *http2.DataFrame:
			n := len(f.Data())
			if avail -= n; avail < 0 {
				t.Fatalf("stream %d: Weir sent %d bytes past the client's window", id, -avail)
			}
			r.body = append(r.body, f.Data()...)
			r.frames = append(r.frames, "DATA "+strconv.Itoa(n)+mark)
			if n > 0 {
				avail += n
				_ = fr.WriteWindowUpdate(0, uint32(n))
				_ = fr.WriteWindowUpdate(id, uint32(n))
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset: %v (so far %v)", id, f.ErrCode, r.frames)
		}
		if end {
			return r
		}
	}
}

func writeRequest(t *testing.T, fr *http2.Framer, id uint32, end bool, extra ...string) {
	t.Helper()
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock(t, extra...),
		EndHeaders: true, EndStream: end}); err != nil {
		t.Fatal(err)
	}
}

// A small response leaves as HEADERS and one DATA frame that ends the
// stream; a response without a body is one HEADERS frame.
func TestH2ResponseFraming(t *testing.T) {
	origin := serveOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			w.WriteHeader(204)
			return
		}
		io.WriteString(w, "hello, h2")
	})
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	nc, fr := h2Raw(t, addr)
	writeRequest(t, fr, 1, true)
	r := readH2Response(t, nc, fr, 1, 65535)
	if r.status != "200" || string(r.body) != "hello, h2" || r.header["content-length"] != "9" {
		t.Fatalf("got %s %q %v", r.status, r.body, r.header)
	}
	if got := strings.Join(r.frames, ","); got != "HEADERS,DATA 9+END" {
		t.Fatalf("frames %s; want HEADERS,DATA 9+END", got)
	}
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "weir.test"}, {":path", "/empty"}} {
		e.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	r = readH2Response(t, nc, fr, 3, 65535)
	if got := strings.Join(r.frames, ","); r.status != "204" || got != "HEADERS+END" {
		t.Fatalf("got %s, frames %s; want 204 in HEADERS+END", r.status, got)
	}
}

// Weir never sends past the client's window, and a request body larger
// than both windows Weir advertises arrives whole.
func TestH2FlowControlBothWays(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16) // 300 KiB
	origin := serveOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			w.Write(big)
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Len", strconv.FormatInt(n, 10))
		w.Header().Set("X-Sum", string(strconv.AppendQuote(nil, string(h.Sum(nil)))))
	})
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))

	// A client with a 1000-byte stream window and the default 65535-byte
	// connection window.
	nc, fr := h2Raw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	writeRequest(t, fr, 1, true)
	r := readH2Response(t, nc, fr, 1, 1000)
	if !bytes.Equal(r.body, big) {
		t.Fatalf("got %d bytes, want %d", len(r.body), len(big))
	}

	// 6 MiB up: past the 1 MiB stream window and the 4 MiB connection
	// window, so Weir must return window as the peer reads.
	up := bytes.Repeat([]byte("weir"), 6<<20/4)
	resp, err := h2Client(nil).Post("http://"+addr+"/up", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := sha256.Sum256(up)
	if resp.Header.Get("X-Len") != strconv.Itoa(len(up)) || resp.Header.Get("X-Sum") != string(strconv.AppendQuote(nil, string(want[:]))) {
		t.Fatalf("origin saw %s bytes (want %d), sum %s", resp.Header.Get("X-Len"), len(up), resp.Header.Get("X-Sum"))
	}
}

// Shutdown sends GOAWAY at once; a stream in flight still gets its whole
// response, then the connection closes.
func TestH2ShutdownFinishesStreams(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	origin := serveOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	})
	addr, srv := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	nc, fr := h2Raw(t, addr)
	writeRequest(t, fr, 1, true)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the origin")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last stream %d; want NO_ERROR, 1", ga.ErrCode, ga.LastStreamID)
			}
			break
		}
	}
	close(release)
	r := readH2Response(t, nc, fr, 1, 65535)
	if string(r.body) != "finished" {
		t.Fatalf("got %q", r.body)
	}
	if _, err := fr.ReadFrame(); err == nil {
		t.Fatal("the connection stayed open after its last stream")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// A connection with no stream for the idle timeout gets GOAWAY NO_ERROR
// and is closed.
func TestH2IdleTimeout(t *testing.T) {
	origin := echoOrigin(t, false)
	addr, _ := startFront(t, &ListenerOptions{H2C: true, H2: H2Limits{IdleTimeout: 300 * time.Millisecond}},
		group(t, upstream.ProtoHTTP1, origin))
	nc, fr := h2Raw(t, addr)
	writeRequest(t, fr, 1, true)
	readH2Response(t, nc, fr, 1, 65535)
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before the close: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v", ga.ErrCode)
			}
			break
		}
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", waited)
	}
	if _, err := fr.ReadFrame(); err == nil {
		t.Fatal("the connection stayed open after GOAWAY")
	}
}

// Request trailers reach an HTTP/1.1 peer (in the chunked body), and the
// peer's trailers come back in a HEADERS frame that ends the stream.
func TestH2TrailersBothWays(t *testing.T) {
	origin := serveOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Echo")
		io.WriteString(w, "body")
		w.Header().Set("X-Echo", r.Trailer.Get("X-Client"))
	})
	addr, _ := startFront(t, &ListenerOptions{H2C: true}, group(t, upstream.ProtoHTTP1, origin))
	nc, fr := h2Raw(t, addr)
	writeRequest(t, fr, 1, false, "te", "trailers", "trailer", "x-client")
	fr.WriteData(1, false, []byte("payload"))
	var b bytes.Buffer
	hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: "x-client", Value: "sent"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndHeaders: true, EndStream: true})
	r := readH2Response(t, nc, fr, 1, 65535)
	if string(r.body) != "body" || r.trailer["x-echo"] != "sent" {
		t.Fatalf("body %q trailer %v frames %v", r.body, r.trailer, r.frames)
	}
	if last := r.frames[len(r.frames)-1]; last != "HEADERS+END" {
		t.Fatalf("frames %v; want the trailers to end the stream", r.frames)
	}
}

// h2Seeds are frame sequences (after the preface) for FuzzH2Frames.
func h2Seeds() [][]byte {
	block := func(kv ...string) []byte {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(kv); i += 2 {
			e.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return b.Bytes()
	}
	get := block(":method", "GET", ":scheme", "http", ":authority", "weir.test", ":path", "/")
	post := block(":method", "POST", ":scheme", "http", ":authority", "weir.test", ":path", "/up", "content-length", "5")
	var out [][]byte
	add := func(write func(fr *http2.Framer)) {
		var b bytes.Buffer
		fr := http2.NewFramer(&b, nil)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
		write(fr)
		out = append(out, b.Bytes())
	}
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get, EndHeaders: true, EndStream: true})
	})
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
		fr.WriteData(1, false, []byte("he"))
		fr.WriteWindowUpdate(0, 1000)
		fr.WriteData(1, true, []byte("llo"))
	})
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get[:3], EndStream: true})
		fr.WriteContinuation(1, true, get[3:])
		fr.WritePing(false, [8]byte{1, 2, 3})
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
		fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 9})
	})
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
		fr.WriteData(1, false, []byte("hello"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-trailer", "1"), EndHeaders: true, EndStream: true})
		fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	})
	return out
}

// FuzzH2Frames sends arbitrary frames after the client preface. Weir may
// answer anything or close, but it must not crash, hang, or stop serving
// the next client. The seed corpus is in testdata/fuzz/FuzzH2Frames.
func FuzzH2Frames(f *testing.F) {
	origin := echoOrigin(f, false)
	addr, _ := startFront(f, &ListenerOptions{H2C: true}, group(f, upstream.ProtoHTTP1, origin))
	for _, s := range h2Seeds() {
		f.Add(s)
	}
	client := h2Client(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(append([]byte(http2.ClientPreface), in...))
		nc.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("Weir neither answered nor closed: %v", err)
		}
		resp, err := client.Post("http://"+addr+"/", "text/plain", strings.NewReader("still there"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "still there" {
			t.Fatalf("next client got %q", b)
		}
	})
}

// BenchmarkH2Proxy: one HTTP/2 stream after another over one cleartext
// connection, to an HTTP/1.1 origin answering 12 bytes. allocs/op counts
// the client's and the origin's share too (both are small and fixed).
func BenchmarkH2Proxy(b *testing.B) {
	origin := testkit.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"))
	addr, _ := startFront(b, &ListenerOptions{H2C: true}, group(b, upstream.ProtoHTTP1, origin))
	_, fr := h2Raw(b, addr)
	fr.SetReuseFrames()
	fr.WriteWindowUpdate(0, 1<<30)
	block := headerBlock(b)
	id := uint32(1)
	roundTrip := func() {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: true}); err != nil {
			b.Fatal(err)
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			if f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream) {
				break
			}
		}
		id += 2
	}
	benchRounds(b, roundTrip)
}

// A client that grants no flow-control window holds a stream for the
// write timeout at most: the stream is reset and the peer connection
// goes back to the pool.
func TestH2StalledWindowTimesOut(t *testing.T) {
	origin := serveOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 1000))
	})
	g := group(t, upstream.ProtoHTTP1, origin)
	addr, _ := startFrontWith(t, &ListenerOptions{H2C: true}, g,
		func(h *Handler) { h.Limits.WriteTimeout = 300 * time.Millisecond })
	nc, fr := h2Raw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	writeRequest(t, fr, 1, true)
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no reset: %v", err)
		}
		if f.Header().StreamID != 1 {
			continue
		}
		if _, ok := f.(*http2.DataFrame); ok && len(f.(*http2.DataFrame).Data()) > 0 {
			t.Fatal("DATA sent with no window")
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			t.Logf("RST_STREAM %v after %v", rst.ErrCode, time.Since(start))
			break
		}
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("reset after %v, before the write timeout", waited)
	}
	testkit.WaitFor(t, 5*time.Second, "the exchange to end", func() bool { return g.Peers[0].Inflight() == 0 })
}

// A stream whose request body stops arriving gets 408 after
// limits.body_read_timeout, as on HTTP/1.1, and the exchange ends.
func TestH2BodyReadTimeout(t *testing.T) {
	origin := echoOrigin(t, false)
	g := group(t, upstream.ProtoHTTP1, origin)
	addr, _ := startFrontWith(t, &ListenerOptions{H2C: true}, g,
		func(h *Handler) { h.Limits.BodyReadTimeout = 300 * time.Millisecond })
	nc, fr := h2Raw(t, addr)
	writeRequest(t, fr, 1, false, "content-length", "10")
	fr.WriteData(1, false, []byte("12345"))
	start := time.Now()
	r := readH2Response(t, nc, fr, 1, 65535)
	if r.status != "408" {
		t.Fatalf("status %s, body %q; want 408", r.status, r.body)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("answered after %v, before the body timeout", waited)
	}
	testkit.WaitFor(t, 5*time.Second, "the exchange to end", func() bool { return g.Peers[0].Inflight() == 0 })
}
