package adversarial

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/message"
)

// acceptedRequest is a request Weir's own parser accepts from a byte
// stream, with the body its framing gives.
type acceptedRequest struct {
	method, path string
	body         []byte
	complete     bool // the whole body was there
}

// acceptedRequests reads in the way Weir's parser does, request after
// request, until a head or body is rejected, incomplete, or ends the
// connection.
func acceptedRequests(in []byte) []acceptedRequest {
	var out []acceptedRequest
	for len(in) > 0 {
		var m message.Request
		n, err := http1.ParseRequest(in, nil, &m)
		if err != nil {
			return out
		}
		in = in[n:]
		r := acceptedRequest{method: string(m.Method), path: string(m.Path), complete: true}
		switch {
		case m.Chunked:
			var d http1.ChunkedDecoder
			for !d.Done() {
				data, k, err := d.Decode(in)
				in = in[k:]
				r.body = append(r.body, data...)
				if err != nil {
					r.complete = false
					return append(out, r)
				}
			}
		case m.ContentLength > int64(len(in)):
			r.body, r.complete = in, false
			return append(out, r)
		default:
			r.body, in = in[:m.ContentLength], in[m.ContentLength:]
		}
		out = append(out, r)
		if m.Close {
			return out
		}
	}
	return out
}

// FuzzProxyRequest sends arbitrary bytes to an in-process Weir over a real
// socket, with a recording origin behind it. Properties:
//
//   - Weir never panics (a panic in any of its goroutines ends the run);
//   - it answers or closes within 5s once the client has sent everything;
//   - every request the origin reads parses strictly, with the framing
//     Weir's own parser reads (no smuggled or re-framed request), and the
//     requests the origin completes are, in order, requests Weir's parser
//     accepted from the input, with the same method, path and body.
//
// The seed corpus is every scenario in testdata/smuggling and
// testdata/upstream.
func FuzzProxyRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.txt")
	for _, file := range files {
		sc, err := parseScenario(file)
		if err != nil {
			f.Fatal(err)
		}
		var all []byte
		for _, body := range sc.all(secSend) {
			b, err := decodeBytes(body)
			if err != nil {
				f.Fatal(err)
			}
			all = append(all, b...)
		}
		f.Add(all)
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /q HTTP/1.1\r\nHost: x\r\n\r\n"))

	rec := testutil.NewRecorder(f, nil)
	w := testutil.StartWeir(f, testutil.OneRoute(rec.Addr, "    retries: 0\n", "shutdown_grace: 1s\n"), weir.Options{})
	pool := w.Srv.Group("app").Peers[0].Pool()

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 256<<10 {
			return
		}
		c, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(in) // Weir may close early after rejecting a head
		_ = c.(*net.TCPConn).CloseWrite()
		if got, closed := testutil.ReadAllUntilClose(c, 5*time.Second); !closed {
			t.Fatalf("Weir neither answered nor closed within 5s of the input's end; got %q", testutil.Clip(got))
		}
		c.Close()

		// Close the upstream connections this input used, so that what
		// the origin read is complete, then take the record.
		testutil.WaitFor(t, 5*time.Second, "Weir to close the client connection", func() bool {
			return w.Srv.Engine().ActiveConns() == 0
		})
		pool.CloseIdle()
		_, _, dialed := pool.Stats()
		testutil.WaitFor(t, 5*time.Second, "the origin to accept Weir's connections", func() bool {
			return int64(rec.Accepted()) >= dialed
		})
		if !rec.WaitConnsClosed(5 * time.Second) {
			t.Fatalf("an upstream connection stayed open")
		}
		accepted := acceptedRequests(in)
		next := 0
		for _, rc := range rec.Take() {
			for _, r := range rc.Requests {
				if r.Strict != nil {
					t.Fatalf("the origin read a request Weir's parser rejects or frames differently (%v): %q", r.Strict, r.Raw)
				}
				for next < len(accepted) && !(accepted[next].complete && accepted[next].method == r.Method &&
					accepted[next].path == r.Target && bytes.Equal(accepted[next].body, r.Body)) {
					next++
				}
				if next == len(accepted) {
					t.Fatalf("the origin read %s, which is not among the requests Weir's parser accepts from the input, in order: %+v",
						r.Summary(), accepted)
				}
				next++
			}
		}
	})
}
