package http1

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/weirproxy/weir/message"
)

// roomy lets a re-serialised head grow (": " is added to every field).
var roomy = &Limits{MaxHeaderBytes: 1 << 24, MaxHeaderFields: 1 << 20}

// inside fails unless s is empty or lies within buf.
func inside(t *testing.T, what string, buf, s []byte) {
	t.Helper()
	if len(s) == 0 {
		return
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	if p < b || p+uintptr(len(s)) > b+uintptr(len(buf)) {
		t.Fatalf("%s %q does not alias the head", what, s)
	}
}

func insideHeader(t *testing.T, buf []byte, h *message.Header) {
	t.Helper()
	for _, f := range h.Fields {
		inside(t, "field name", buf, f.Name)
		inside(t, "field value", buf, f.Value)
	}
}

// checkParseError fails unless err is ErrIncomplete or an *Error with one
// of the statuses allowed, with n == 0.
func checkParseError(t *testing.T, n int, err error, statuses ...int) {
	t.Helper()
	if n != 0 {
		t.Fatalf("n = %d with error %v", n, err)
	}
	if errors.Is(err, ErrIncomplete) {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("unexpected error type %T", err)
	}
	for _, s := range statuses {
		if e.Status == s {
			return
		}
	}
	t.Fatalf("status %d (%v), want one of %v", e.Status, err, statuses)
}

func sameFields(t *testing.T, a, b *message.Header) {
	t.Helper()
	if len(a.Fields) != len(b.Fields) {
		t.Fatalf("%d fields, then %d", len(a.Fields), len(b.Fields))
	}
	for i := range a.Fields {
		if string(a.Fields[i].Name) != string(b.Fields[i].Name) || string(a.Fields[i].Value) != string(b.Fields[i].Value) {
			t.Fatalf("field %d: %q: %q, then %q: %q", i, a.Fields[i].Name, a.Fields[i].Value, b.Fields[i].Name, b.Fields[i].Value)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req message.Request
		n, err := ParseRequest(data, nil, &req)
		if err != nil {
			checkParseError(t, n, err, 400, 414, 431, 505)
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		head := data[:n]
		for _, s := range [][]byte{req.Method, req.Target, req.Path, req.Authority} {
			inside(t, "request line part", head, s)
		}
		insideHeader(t, head, &req.Header)

		// The head alone parses the same; any shorter prefix is incomplete.
		var again message.Request
		if n2, err := ParseRequest(head, nil, &again); err != nil || n2 != n {
			t.Fatalf("head alone: n=%d err=%v, first n=%d", n2, err, n)
		}
		sameFields(t, &req.Header, &again.Header)
		for _, k := range []int{n - 1, n / 2, len(req.Method)} {
			if k < n {
				var p message.Request
				if m, err := ParseRequest(data[:k], nil, &p); m != 0 || err != ErrIncomplete {
					t.Fatalf("prefix of %d bytes: n=%d err=%v", k, m, err)
				}
			}
		}

		// HTTP/1.1 requests survive re-serialisation (the writer always
		// writes 1.1, which a 1.0 request's fields may not suit).
		if req.ProtoMinor != 1 {
			return
		}
		out := AppendRequestHead(nil, &req)
		var rt message.Request
		if m, err := ParseRequest(out, roomy, &rt); err != nil || m != len(out) {
			t.Fatalf("re-serialised %q: n=%d err=%v", out, m, err)
		}
		if string(rt.Method) != string(req.Method) || string(rt.Path) != string(req.Path) ||
			rt.ContentLength != req.ContentLength || rt.Chunked != req.Chunked || rt.Close != req.Close {
			t.Fatalf("re-serialised %q parsed differently", out)
		}
		sameFields(t, &req.Header, &rt.Header)
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp message.Response
		n, err := ParseResponse(data, nil, &resp)
		if err != nil {
			checkParseError(t, n, err, 502)
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("status %d", resp.Status)
		}
		head := data[:n]
		inside(t, "reason", head, resp.Reason)
		insideHeader(t, head, &resp.Header)
		if m, err := ParseResponse(data[:n-1], nil, &message.Response{}); m != 0 || err != ErrIncomplete {
			t.Fatalf("prefix: n=%d err=%v", m, err)
		}
		if resp.ProtoMinor != 1 {
			return
		}
		out := AppendResponseHead(nil, &resp)
		var rt message.Response
		if m, err := ParseResponse(out, roomy, &rt); err != nil || m != len(out) {
			t.Fatalf("re-serialised %q: n=%d err=%v", out, m, err)
		}
		if rt.Status != resp.Status || rt.ContentLength != resp.ContentLength || rt.Chunked != resp.Chunked {
			t.Fatalf("re-serialised %q parsed differently", out)
		}
		sameFields(t, &resp.Header, &rt.Header)
	})
}

func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		lim := ChunkLimits{MaxChunkLine: 64, MaxTrailerBytes: 256, MaxTrailerFields: 8}
		var d ChunkedDecoder
		d.Reset(lim)
		whole := decodePieces(t, &d, [][]byte{data})
		k := int(split) % (len(data) + 1)
		d.Reset(lim)
		halves := decodePieces(t, &d, [][]byte{data[:k], data[k:]})
		if whole.status > 0 {
			if whole.status != 400 {
				t.Fatalf("status %d", whole.status)
			}
			// Where an error is noticed inside a buffered trailer line
			// depends on the split; what was delivered does not.
			whole.consumed, halves.consumed = 0, 0
		}
		if whole != halves {
			t.Fatalf("whole %+v, split at %d %+v", whole, k, halves)
		}
		if len(data) <= 4096 {
			bytewise := decodeBytewise(t, lim, string(data))
			if whole.status > 0 {
				bytewise.consumed = 0
			}
			if whole != bytewise {
				t.Fatalf("whole %+v, byte by byte %+v", whole, bytewise)
			}
		}
	})
}
