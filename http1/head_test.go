package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/weirproxy/weir/message"
)

// statusOf reduces a parse error to what a caller acts on: 0 for success,
// -1 for ErrIncomplete, else the *Error's status.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrIncomplete) {
		return -1
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is neither ErrIncomplete nor *Error", err)
	}
	return e.Status
}

type reqWant struct {
	method, target, path, authority string
	minor                           int
	cl                              int64
	chunked, close                  bool
	fields                          [][2]string // nil: not checked
}

func checkRequest(t *testing.T, req *message.Request, w *reqWant) {
	t.Helper()
	got := reqWant{
		method: string(req.Method), target: string(req.Target), path: string(req.Path),
		authority: string(req.Authority), minor: req.ProtoMinor, cl: req.ContentLength,
		chunked: req.Chunked, close: req.Close,
	}
	if req.ProtoMajor != 1 {
		t.Errorf("ProtoMajor = %d", req.ProtoMajor)
	}
	if w.fields != nil {
		for _, f := range req.Header.Fields {
			got.fields = append(got.fields, [2]string{string(f.Name), string(f.Value)})
		}
		if len(got.fields) != len(w.fields) {
			t.Errorf("fields = %q, want %q", got.fields, w.fields)
		} else {
			for i := range w.fields {
				if got.fields[i] != w.fields[i] {
					t.Errorf("field %d = %q, want %q", i, got.fields[i], w.fields[i])
				}
			}
		}
	}
	got.fields = w.fields
	if got.method != w.method || got.target != w.target || got.path != w.path ||
		got.authority != w.authority || got.minor != w.minor || got.cl != w.cl ||
		got.chunked != w.chunked || got.close != w.close {
		t.Errorf("parsed\n got %+v\nwant %+v", got, *w)
	}
}

const host = "Host: example.com\r\n"

func get(fields string) string { return "GET / HTTP/1.1\r\n" + host + fields + "\r\n" }

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want reqWant
	}{
		{"simple", "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n\r\n",
			reqWant{method: "GET", target: "/a/b?c=d", path: "/a/b?c=d", authority: "example.com", minor: 1,
				fields: [][2]string{{"Host", "example.com"}, {"User-Agent", "x"}}}},
		{"field case and order kept, OWS trimmed",
			"GET / HTTP/1.1\r\nhOsT: example.com\r\nX-A:  a b \t\r\nX-B:\t\r\nX-C:v\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", authority: "example.com", minor: 1,
				fields: [][2]string{{"hOsT", "example.com"}, {"X-A", "a b"}, {"X-B", ""}, {"X-C", "v"}}}},
		{"obs-text and HTAB inside value", "GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\tok\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", authority: "h", minor: 1,
				fields: [][2]string{{"Host", "h"}, {"X", "caf\xc3\xa9\tok"}}}},
		{"HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", close: true}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", close: false}},
		{"HTTP/1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", close: true}},
		{"Connection close in a list", get("Connection: upgrade ,  CLOSE\r\n"),
			reqWant{method: "GET", target: "/", path: "/", authority: "example.com", minor: 1, close: true}},
		{"Content-Length", "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
			reqWant{method: "POST", target: "/up", path: "/up", authority: "h", minor: 1, cl: 5}},
		{"Content-Length leading zeros", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n",
			reqWant{method: "POST", target: "/", path: "/", authority: "h", minor: 1, cl: 7}},
		{"Content-Length 2^62", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387904\r\n\r\n",
			reqWant{method: "POST", target: "/", path: "/", authority: "h", minor: 1, cl: 1 << 62}},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
			reqWant{method: "POST", target: "/", path: "/", authority: "h", minor: 1, cl: -1, chunked: true}},
		{"Chunked any case", "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  Chunked \r\n\r\n",
			reqWant{method: "POST", target: "/", path: "/", authority: "h", minor: 1, cl: -1, chunked: true}},
		{"leading empty lines", "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", authority: "h", minor: 1}},
		{"absolute-form overrides Host", "GET http://Example.COM:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
			reqWant{method: "GET", target: "http://Example.COM:8080/p?q=1", path: "/p?q=1",
				authority: "Example.COM:8080", minor: 1}},
		{"absolute-form https empty path", "GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n",
			reqWant{method: "GET", target: "HTTPS://h", path: "/", authority: "h", minor: 1}},
		{"absolute-form HTTP/1.0 without Host", "GET http://h/x HTTP/1.0\r\n\r\n",
			reqWant{method: "GET", target: "http://h/x", path: "/x", authority: "h", close: true}},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			reqWant{method: "CONNECT", target: "example.com:443", path: "example.com:443",
				authority: "example.com:443", minor: 1}},
		{"CONNECT IPv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
			reqWant{method: "CONNECT", target: "[2001:db8::1]:443", path: "[2001:db8::1]:443",
				authority: "[2001:db8::1]:443", minor: 1}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
			reqWant{method: "OPTIONS", target: "*", path: "*", authority: "h", minor: 1}},
		{"IPv6 Host with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", authority: "[::1]:8080", minor: 1}},
		{"Host pct-encoded and sub-delims", "GET / HTTP/1.1\r\nHost: a%2Db!$&'()*+,;=_~.example\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", authority: "a%2Db!$&'()*+,;=_~.example", minor: 1}},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", minor: 1}},
		{"extension method", "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n",
			reqWant{method: "PURGE", target: "/x", path: "/x", authority: "h", minor: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req message.Request
			in := tt.in + "BODY"
			n, err := ParseRequest([]byte(in), nil, &req)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if n != len(tt.in) {
				t.Errorf("n = %d, want %d", n, len(tt.in))
			}
			checkRequest(t, &req, &tt.want)
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	big := strings.Repeat("a", 9000)
	var many strings.Builder
	for i := 0; i < 101; i++ {
		many.WriteString("X-F: v\r\n")
	}
	var huge strings.Builder
	for huge.Len() < 70<<10 {
		huge.WriteString("X-Pad: " + strings.Repeat("p", 1000) + "\r\n")
	}
	tests := []struct {
		name   string
		in     string
		status int
	}{
		// Framing (RFC 9112 6).
		{"CL and TE", get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
		{"TE and CL", get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400},
		{"TE chunked, identity", get("Transfer-Encoding: chunked, identity\r\n"), 400},
		{"TE gzip", get("Transfer-Encoding: gzip\r\n"), 400},
		{"TE gzip, chunked", get("Transfer-Encoding: gzip, chunked\r\n"), 400},
		{"TE chunked, chunked", get("Transfer-Encoding: chunked, chunked\r\n"), 400},
		{"TE xchunked", get("Transfer-Encoding: xchunked\r\n"), 400},
		{"TE chunked with junk", get("Transfer-Encoding: chunked;x\r\n"), 400},
		{"TE empty", get("Transfer-Encoding:\r\n"), 400},
		{"two TE fields", get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"CL +5", get("Content-Length: +5\r\n"), 400},
		{"CL 5 5", get("Content-Length: 5 5\r\n"), 400},
		{"CL -1", get("Content-Length: -1\r\n"), 400},
		{"CL 0x10", get("Content-Length: 0x10\r\n"), 400},
		{"CL list", get("Content-Length: 5,5\r\n"), 400},
		{"CL list with space", get("Content-Length: 5, 5\r\n"), 400},
		{"two equal CL fields", get("Content-Length: 5\r\nContent-Length: 5\r\n"), 400},
		{"two CL fields", get("Content-Length: 5\r\nContent-Length: 6\r\n"), 400},
		{"CL 2^62+1", get("Content-Length: 4611686018427387905\r\n"), 400},
		{"CL 20 digits", get("Content-Length: 99999999999999999999\r\n"), 400},
		{"CL empty", get("Content-Length: \r\n"), 400},
		// Line endings and field syntax (RFC 9112 2.2, 5).
		{"obs-fold", get("X-A: a\r\n b\r\n"), 400},
		{"obs-fold with tab", get("X-A: a\r\n\tb\r\n"), 400},
		{"first field folded", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
		{"bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
		{"bare LF after field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
		{"bare LF ends head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
		{"only bare LFs", "GET / HTTP/1.1\nHost: h\n\n", 400},
		{"bare CR in value", get("X-A: a\rb\r\n"), 400},
		{"bare CR ends field", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
		{"CR CR LF", get("X-A: a\r\r\n"), 400},
		{"bare CR on the empty line", "GET / HTTP/1.1\r\nHost: h\r\n\rX", 400},
		{"NUL in value", get("X-A: a\x00b\r\n"), 400},
		{"CTL in value", get("X-A: a\x01b\r\n"), 400},
		{"DEL in value", get("X-A: a\x7fb\r\n"), 400},
		{"space before colon", get("X-A : a\r\n"), 400},
		{"tab before colon", get("X-A\t: a\r\n"), 400},
		{"space in name", get("X Y: a\r\n"), 400},
		{"DEL in name", get("X\x7f: a\r\n"), 400},
		{"non-ASCII in name", get("X\xc3\xa9: a\r\n"), 400},
		{"empty name", get(": a\r\n"), 400},
		{"no colon", get("X-A\r\n"), 400},
		// Host (RFC 9112 3.2).
		{"missing Host in 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"two Hosts, 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
		{"Host with path", "GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", 400},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n", 400},
		{"Host port too large", "GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", 400},
		{"Host bad pct", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
		{"Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
		{"Host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
		{"bad Host with absolute-form", "GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		// Request line (RFC 9112 3).
		{"two spaces after method", "GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"two spaces before version", "GET /  HTTP/1.1\r\n" + host + "\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\n" + host + "\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"leading space", " GET / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"bad method char", "GE(T / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"no version", "GET /\r\n" + host + "\r\n", 400},
		{"no target", "GET HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CTL in target", "GET /\x01 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"DEL in target", "GET /\x7f HTTP/1.1\r\n" + host + "\r\n", 400},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"lowercase version", "GET / http/1.1\r\n" + host + "\r\n", 400},
		{"version HTTP/1", "GET / HTTP/1\r\n" + host + "\r\n", 400},
		{"version HTTP/1.10", "GET / HTTP/1.10\r\n" + host + "\r\n", 400},
		{"version HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
		{"version HTTP/0.9", "GET / HTTP/0.9\r\n" + host + "\r\n", 505},
		{"version HTTP/1.2", "GET / HTTP/1.2\r\n" + host + "\r\n", 505},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"bare LF before request line", "\nGET / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"bare CR before request line", "\rGET / HTTP/1.1\r\n" + host + "\r\n", 400},
		// Target forms (RFC 9112 3.2).
		{"asterisk with GET", "GET * HTTP/1.1\r\n" + host + "\r\n", 400},
		{"authority-form with GET", "GET example.com:80 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT origin-form", "CONNECT / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT absolute-form", "CONNECT http://h:80/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT empty port", "CONNECT example.com: HTTP/1.1\r\n" + host + "\r\n", 400},
		{"other scheme", "GET ftp://h/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form empty host", "GET http:///p HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form userinfo", "GET http://u:p@h/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form query without path", "GET http://h?q HTTP/1.1\r\n" + host + "\r\n", 400},
		{"relative target", "GET foo HTTP/1.1\r\n" + host + "\r\n", 400},
		// Limits.
		{"request line 9000 bytes", "GET /" + big + " HTTP/1.1\r\n" + host + "\r\n", 414},
		{"request line 9000 bytes, incomplete", "GET /" + big, 414},
		{"101 fields", "GET / HTTP/1.1\r\nHost: h\r\n" + many.String()[:100*len("X-F: v\r\n")] + "\r\n", 431},
		{"101 fields, incomplete", "GET / HTTP/1.1\r\n" + many.String(), 431},
		{"70 KiB head", "GET / HTTP/1.1\r\n" + host + huge.String() + "\r\n", 431},
		{"70 KiB, incomplete", "GET / HTTP/1.1\r\n" + host + huge.String(), 431},
		// Errors visible before the head is complete.
		{"bare LF, incomplete", "GET / HTTP/1.1\r\nHost: h\nX", 400},
		{"bad request line, complete only later", "GET / HTTP/1.1\r\nHost: h\r\n", -1},
		{"empty", "", -1},
		{"CR only", "\r", -1},
		{"empty line only", "\r\n", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req message.Request
			n, err := ParseRequest([]byte(tt.in), nil, &req)
			if got := statusOf(t, err); got != tt.status {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.status)
			}
			if n != 0 {
				t.Errorf("n = %d on failure", n)
			}
		})
	}
}

func TestParseRequestFieldLimit(t *testing.T) {
	fields := func(k int) string {
		return "GET / HTTP/1.1\r\n" + strings.Repeat("Host: h\r\n", 1) + strings.Repeat("X: v\r\n", k-1) + "\r\n"
	}
	var req message.Request
	if _, err := ParseRequest([]byte(fields(100)), nil, &req); err != nil {
		t.Fatalf("100 fields: %v", err)
	}
	req.Reset()
	if _, err := ParseRequest([]byte(fields(101)), nil, &req); statusOf(t, err) != 431 {
		t.Fatalf("101 fields: %v, want 431", err)
	}
	lim := &Limits{MaxHeaderFields: 3, MaxRequestLine: 20, MaxHeaderBytes: 60}
	req.Reset()
	if _, err := ParseRequest([]byte(fields(3)), lim, &req); err != nil {
		t.Fatalf("3 fields with limit 3: %v", err)
	}
	req.Reset()
	if _, err := ParseRequest([]byte(fields(4)), lim, &req); statusOf(t, err) != 431 {
		t.Fatalf("4 fields with limit 3: %v, want 431", err)
	}
	req.Reset()
	if _, err := ParseRequest([]byte("GET /0123456789012 HTTP/1.1\r\n"), lim, &req); statusOf(t, err) != 414 {
		t.Fatalf("long line with limit 20: %v, want 414", err)
	}
	req.Reset()
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: h\r\nX: "+strings.Repeat("v", 40)+"\r\n\r\n"), lim, &req); statusOf(t, err) != 431 {
		t.Fatalf("head over 60 bytes: %v, want 431", err)
	}
	req.Reset()
	if _, err := ParseRequest([]byte("GET /0123456"), &Limits{MaxHeaderBytes: 10}, &req); statusOf(t, err) != 431 {
		t.Fatalf("partial line over a 10-byte head limit: %v, want 431", err)
	}
	def := DefaultLimits()
	req.Reset()
	if _, err := ParseRequest([]byte(fields(101)), &def, &req); statusOf(t, err) != 431 {
		t.Fatalf("101 fields with DefaultLimits: %v, want 431", err)
	}
	var e *Error
	req.Reset()
	_, err := ParseRequest([]byte("GET / HTTP/1.1\r\n\r\n"), nil, &req)
	if !errors.As(err, &e) || e.Error() != "http1: missing Host" {
		t.Fatalf("error text %v", err)
	}
}

// TestParseRequestSplit feeds every prefix of complete requests: each must
// be ErrIncomplete, and the whole must parse as it does in one piece.
func TestParseRequestSplit(t *testing.T) {
	inputs := []string{
		"\r\nPOST /submit?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\nConnection: close\r\n\r\n",
		"GET http://h:81/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	}
	for _, in := range inputs {
		var whole message.Request
		wn, err := ParseRequest([]byte(in), nil, &whole)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		for k := 0; k < len(in); k++ {
			var req message.Request
			n, err := ParseRequest([]byte(in[:k]), nil, &req)
			if n != 0 || !errors.Is(err, ErrIncomplete) {
				t.Fatalf("%q[:%d]: n=%d err=%v, want ErrIncomplete", in, k, n, err)
			}
		}
		// The same bytes with the rest of a stream behind them.
		var req message.Request
		n, err := ParseRequest([]byte(in+"hello world"), nil, &req)
		if err != nil || n != wn {
			t.Fatalf("%q with body: n=%d err=%v", in, n, err)
		}
		want := reqWant{method: string(whole.Method), target: string(whole.Target), path: string(whole.Path),
			authority: string(whole.Authority), minor: whole.ProtoMinor, cl: whole.ContentLength,
			chunked: whole.Chunked, close: whole.Close}
		for _, f := range whole.Header.Fields {
			want.fields = append(want.fields, [2]string{string(f.Name), string(f.Value)})
		}
		checkRequest(t, &req, &want)
	}
}

// TestParseRequestRetryWithoutReset is the read loop of a server that
// calls again on the same Request as bytes arrive.
func TestParseRequestRetryWithoutReset(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	var req message.Request
	for k := 0; k < len(in); k++ {
		if _, err := ParseRequest([]byte(in[:k]), nil, &req); err != ErrIncomplete {
			t.Fatalf("prefix %d: %v", k, err)
		}
	}
	if _, err := ParseRequest([]byte(in), nil, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Header.Fields) != 3 {
		t.Fatalf("%d fields after retries, want 3", len(req.Header.Fields))
	}
	var resp message.Response
	r := "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n"
	ParseResponse([]byte(r[:len(r)-1]), nil, &resp)
	if _, err := ParseResponse([]byte(r), nil, &resp); err != nil || len(resp.Header.Fields) != 2 {
		t.Fatalf("response after retry: %v, %d fields", err, len(resp.Header.Fields))
	}
}

type respWant struct {
	minor, status  int
	reason         string
	cl             int64
	chunked, close bool
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int // of the error; 0 when the head is valid
		want   respWant
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 0, respWant{1, 200, "OK", 3, false, false}},
		{"no CL", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", 0, respWant{1, 200, "OK", -1, false, false}},
		{"empty reason", "HTTP/1.1 204 \r\n\r\n", 0, respWant{1, 204, "", -1, false, false}},
		{"no reason, no SP", "HTTP/1.1 304\r\n\r\n", 0, respWant{1, 304, "", -1, false, false}},
		{"reason with SP, HTAB, obs-text", "HTTP/1.1 404 Not \tF\xf6und\r\n\r\n", 0,
			respWant{1, 404, "Not \tF\xf6und", -1, false, false}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0, respWant{1, 200, "OK", -1, true, false}},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 0, respWant{1, 200, "OK", -1, false, true}},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, respWant{0, 200, "OK", 0, false, true}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0,
			respWant{0, 200, "OK", 0, false, false}},
		{"equal CL fields", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\ncontent-length: 4\r\n\r\n", 0,
			respWant{1, 200, "OK", 4, false, false}},
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, respWant{1, 100, "Continue", -1, false, false}},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0,
			respWant{1, 101, "Switching Protocols", -1, false, false}},
		{"599", "HTTP/1.1 599 X\r\n\r\n", 0, respWant{1, 599, "X", -1, false, false}},

		{"status 600", "HTTP/1.1 600 X\r\n\r\n", 502, respWant{}},
		{"status 099", "HTTP/1.1 099 X\r\n\r\n", 502, respWant{}},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 502, respWant{}},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 502, respWant{}},
		{"no SP before reason", "HTTP/1.1 200OK\r\n\r\n", 502, respWant{}},
		{"letters in status", "HTTP/1.1 2x0 OK\r\n\r\n", 502, respWant{}},
		{"two SP after version", "HTTP/1.1  200 OK\r\n\r\n", 502, respWant{}},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 502, respWant{}},
		{"lowercase version", "http/1.1 200 OK\r\n\r\n", 502, respWant{}},
		{"NUL in reason", "HTTP/1.1 200 O\x00K\r\n\r\n", 502, respWant{}},
		{"empty line first", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502, respWant{}},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 502, respWant{}},
		{"differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 502, respWant{}},
		{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", 502, respWant{}},
		{"CL sign", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n", 502, respWant{}},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 502, respWant{}},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 502, respWant{}},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 502, respWant{}},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 502, respWant{}},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502, respWant{}},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 502, respWant{}},
		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", -1, respWant{}},
		{"empty", "", -1, respWant{}},
		{"too large", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: "+strings.Repeat("v", 1000)+"\r\n", 70), 502, respWant{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp message.Response
			n, err := ParseResponse([]byte(tt.in+"body"), nil, &resp)
			if tt.status == -1 {
				n, err = ParseResponse([]byte(tt.in), nil, &resp)
			}
			if got := statusOf(t, err); got != tt.status {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.status)
			}
			if err != nil {
				return
			}
			if n != len(tt.in) {
				t.Errorf("n = %d, want %d", n, len(tt.in))
			}
			got := respWant{resp.ProtoMinor, resp.Status, string(resp.Reason), resp.ContentLength, resp.Chunked, resp.Close}
			if got != tt.want || resp.ProtoMajor != 1 {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResponseBodyMode(t *testing.T) {
	tests := []struct {
		method  string
		status  int
		cl      int64
		chunked bool
		mode    BodyMode
		length  int64
	}{
		{"GET", 200, 10, false, BodyLength, 10},
		{"GET", 200, 0, false, BodyLength, 0},
		{"GET", 200, -1, true, BodyChunked, -1},
		{"GET", 200, -1, false, BodyUntilClose, -1},
		{"HEAD", 200, 10, false, BodyNone, -1},
		{"HEAD", 200, -1, true, BodyNone, -1},
		{"GET", 100, -1, false, BodyNone, -1},
		{"GET", 101, -1, false, BodyNone, -1},
		{"GET", 204, 5, false, BodyNone, -1},
		{"GET", 304, 5, false, BodyNone, -1},
		{"CONNECT", 200, -1, false, BodyNone, -1},
		{"CONNECT", 407, 5, false, BodyLength, 5},
		{"POST", 500, -1, true, BodyChunked, -1},
	}
	for _, tt := range tests {
		resp := message.Response{Status: tt.status, ContentLength: tt.cl, Chunked: tt.chunked}
		mode, length := ResponseBodyMode([]byte(tt.method), &resp)
		if mode != tt.mode || length != tt.length {
			t.Errorf("%s %d cl=%d chunked=%v: got %d,%d want %d,%d",
				tt.method, tt.status, tt.cl, tt.chunked, mode, length, tt.mode, tt.length)
		}
	}
}

func TestHeadParsersDoNotAllocate(t *testing.T) {
	reqBuf := []byte(benchRequest)
	respBuf := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n")
	var req message.Request
	var resp message.Response
	ParseRequest(reqBuf, nil, &req)
	ParseResponse(respBuf, nil, &resp)
	if a := testing.AllocsPerRun(100, func() {
		req.Reset()
		if _, err := ParseRequest(reqBuf, nil, &req); err != nil {
			t.Fatal(err)
		}
		resp.Reset()
		if _, err := ParseResponse(respBuf, nil, &resp); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRequest(reqBuf[:50], nil, &req); err != ErrIncomplete {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per run", a)
	}
}

const benchRequest = "GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(benchRequest)
	var req message.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		req.Reset()
		if _, err := ParseRequest(buf, nil, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: origin\r\n" +
		"Content-Type: application/json\r\nContent-Length: 1234\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n\r\n")
	var resp message.Response
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		resp.Reset()
		if _, err := ParseResponse(buf, nil, &resp); err != nil {
			b.Fatal(err)
		}
	}
}
