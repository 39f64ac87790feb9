package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir"
)

// TestMalformedRequestsRejected: each malformed or oversized request gets
// its error status and a closed connection, and never reaches the origin.
func TestMalformedRequestsRejected(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "origin")
	}))
	p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})

	// The same request, well formed, goes through.
	if status, body := get(t, newClient(t), p.url("/")); status != 200 || body != "origin" {
		t.Fatalf("well-formed request: %d %q", status, body)
	}
	served := o.requests.Load()

	manyFields := strings.Repeat("X-F: v\r\n", 101)
	bigBlock := strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 70) // ~70 KiB
	cases := []struct {
		name   string
		req    string
		status int
	}{
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
		{"Transfer-Encoding xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
		{"two different Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"Content-Length +5", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n", 400},
		{"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 400},
		{"bare LF inside the head", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400},
		{"NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400},
		{"invalid character in a header name", "GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", 400},
		{"missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400},
		{"request line over 8 KiB", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"over 100 header fields", "GET / HTTP/1.1\r\nHost: x\r\n" + manyFields + "\r\n", 431},
		{"header block over 64 KiB", "GET / HTTP/1.1\r\nHost: x\r\n" + bigBlock + "\r\n", 431},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatalf("write: %v", err)
			}
			got := readUntilClose(t, c, 10*time.Second)
			line, _, _ := bytes.Cut(got, []byte("\r\n"))
			wantPrefix := fmt.Sprintf("HTTP/1.1 %d ", tc.status)
			if !strings.HasPrefix(string(line), wantPrefix) {
				t.Fatalf("status line %q, want %q...; full reply %q", line, wantPrefix, clip(got))
			}
			if n := bytes.Count(got, []byte("HTTP/1.1 ")); n != 1 {
				t.Errorf("got %d responses, want exactly one: %q", n, clip(got))
			}
		})
	}
	if got := o.requests.Load(); got != served {
		t.Fatalf("the origin served %d malformed requests", got-served)
	}
}
