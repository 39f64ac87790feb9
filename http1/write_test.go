package http1

import (
	"testing"

	"github.com/weirproxy/weir/message"
)

func TestAppendRequestHeadRoundTrip(t *testing.T) {
	var req message.Request
	req.Method = []byte("POST")
	req.Path = []byte("/v1/upload?x=1")
	req.Header.AddString("Host", "api.example.com:8443")
	req.Header.AddString("Content-Length", "42")
	req.Header.AddString("X-Empty", "")
	req.Header.AddString("Connection", "close")
	buf := AppendRequestHead(nil, &req)
	want := "POST /v1/upload?x=1 HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Length: 42\r\n" +
		"X-Empty: \r\nConnection: close\r\n\r\n"
	if string(buf) != want {
		t.Fatalf("wrote %q, want %q", buf, want)
	}
	var got message.Request
	n, err := ParseRequest(buf, nil, &got)
	if err != nil || n != len(buf) {
		t.Fatalf("parse back: n=%d err=%v", n, err)
	}
	checkRequest(t, &got, &reqWant{method: "POST", target: "/v1/upload?x=1", path: "/v1/upload?x=1",
		authority: "api.example.com:8443", minor: 1, cl: 42, close: true,
		fields: [][2]string{{"Host", "api.example.com:8443"}, {"Content-Length", "42"}, {"X-Empty", ""}, {"Connection", "close"}}})
}

func TestAppendResponseHeadRoundTrip(t *testing.T) {
	tests := []struct {
		status int
		reason string
		line   string
	}{
		{200, "", "HTTP/1.1 200 OK\r\n"},
		{404, "Nope", "HTTP/1.1 404 Nope\r\n"},
		{431, "", "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
		{599, "", "HTTP/1.1 599 \r\n"},
	}
	for _, tt := range tests {
		resp := message.Response{Status: tt.status, Reason: []byte(tt.reason)}
		resp.Header.AddString("Transfer-Encoding", "chunked")
		buf := AppendResponseHead(make([]byte, 0, 256), &resp)
		if want := tt.line + "Transfer-Encoding: chunked\r\n\r\n"; string(buf) != want {
			t.Errorf("wrote %q, want %q", buf, want)
			continue
		}
		var got message.Response
		n, err := ParseResponse(buf, nil, &got)
		if err != nil || n != len(buf) || got.Status != tt.status || !got.Chunked || got.ContentLength != -1 {
			t.Errorf("parse back %q: n=%d err=%v %+v", buf, n, err, got)
		}
	}
}

func TestChunkWritersRoundTrip(t *testing.T) {
	var tr message.Header
	tr.AddString("X-Digest", "sha-256=abc")
	var b []byte
	b = AppendChunkHeader(b, 255)
	if string(b) != "ff\r\n" {
		t.Fatalf("chunk header %q", b)
	}
	for range 255 {
		b = append(b, 'x')
	}
	b = AppendChunkEnd(b)
	b = AppendChunkHeader(b, 1)
	b = append(b, 'y')
	b = AppendChunkEnd(b)
	b = AppendLastChunk(b, &tr)
	r := decodeBytewise(t, ChunkLimits{}, string(b))
	if !r.done || len(r.data) != 256 || r.data[255] != 'y' || r.trailer != "X-Digest=sha-256=abc;" || r.consumed != len(b) {
		t.Fatalf("decoded %+v", r)
	}
	if got := string(AppendLastChunk(nil, nil)); got != "0\r\n\r\n" {
		t.Fatalf("last chunk without trailer %q", got)
	}
}

func TestAppendChunkHeaderRejectsZero(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a zero-size chunk")
		}
	}()
	AppendChunkHeader(nil, 0)
}

func TestStatusTextAndAppendInt(t *testing.T) {
	for code, want := range map[int]string{200: "OK", 304: "Not Modified", 418: "", 503: "Service Unavailable", -1: "", 600: "", 1000: ""} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
	if got := string(AppendInt([]byte("n="), -9223372036854775808)); got != "n=-9223372036854775808" {
		t.Errorf("AppendInt: %q", got)
	}
}

func TestWritersDoNotAllocate(t *testing.T) {
	var req message.Request
	req.Method, req.Path = []byte("GET"), []byte("/")
	req.Header.AddString("Host", "h")
	resp := message.Response{Status: 200}
	resp.Header.AddString("Content-Length", "0")
	dst := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(100, func() {
		b := AppendRequestHead(dst[:0], &req)
		b = AppendResponseHead(b, &resp)
		b = AppendChunkHeader(b, 4096)
		b = AppendChunkEnd(b)
		b = AppendLastChunk(b, &resp.Header)
		_ = AppendInt(b, 12345)
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
