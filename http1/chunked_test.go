package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/weirproxy/weir/message"
)

// chunkResult is everything a caller of ChunkedDecoder observes.
type chunkResult struct {
	data     string
	consumed int
	done     bool
	status   int // 0, -1 for ErrIncomplete, or the *Error's status
	trailer  string
}

// decodePieces feeds pieces to d as a caller would, checking the Decode
// contract on every call.
func decodePieces(t *testing.T, d *ChunkedDecoder, pieces [][]byte) chunkResult {
	t.Helper()
	var r chunkResult
	var data []byte
	for _, p := range pieces {
		for {
			out, n, err := d.Decode(p)
			if n < 0 || n > len(p) {
				t.Fatalf("consumed %d of %d", n, len(p))
			}
			if len(out) > 0 {
				if err != nil {
					t.Fatalf("data with error %v", err)
				}
				if &out[0] != &p[n-len(out)] || &out[len(out)-1] != &p[n-1] {
					t.Fatalf("data does not end at p[consumed]")
				}
			}
			data = append(data, out...)
			r.consumed += n
			p = p[n:]
			if errors.Is(err, ErrIncomplete) {
				if len(p) != 0 || len(out) != 0 {
					t.Fatalf("ErrIncomplete with %d bytes left, %d data", len(p), len(out))
				}
				break
			}
			if err != nil {
				r.data, r.status = string(data), statusOf(t, err)
				if _, _, again := d.Decode(p); again != err {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				return r
			}
			if d.Done() {
				r.data, r.done = string(data), true
				for _, f := range d.Trailer().Fields {
					r.trailer += string(f.Name) + "=" + string(f.Value) + ";"
				}
				if out, n, err := d.Decode(p); out != nil || n != 0 || err != nil {
					t.Fatalf("Decode after Done: %q %d %v", out, n, err)
				}
				return r
			}
			if len(out) == 0 {
				t.Fatalf("no data, not done, no error")
			}
		}
	}
	r.data, r.status = string(data), -1
	return r
}

func decodeWhole(t *testing.T, lim ChunkLimits, in string) chunkResult {
	var d ChunkedDecoder
	d.Reset(lim)
	return decodePieces(t, &d, [][]byte{[]byte(in)})
}

func decodeBytewise(t *testing.T, lim ChunkLimits, in string) chunkResult {
	var d ChunkedDecoder
	d.Reset(lim)
	pieces := make([][]byte, len(in))
	for i := range pieces {
		pieces[i] = []byte{in[i]}
	}
	return decodePieces(t, &d, pieces)
}

func TestChunkedValid(t *testing.T) {
	tests := []struct {
		name, in, data, trailer string
	}{
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", ""},
		{"empty body", "0\r\n\r\n", "", ""},
		{"hex sizes", "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n", "0123456789abcdefghijk", ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", ""},
		{"data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", ""},
		{"extensions", "5;a=b;c\r\nhello\r\n0;last\r\n\r\n", "hello", ""},
		{"BWS after a bare name", "5;a ;b\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"quoted extension", "5;name=\"v \\\" \\\\ ;x\"\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"BWS around ; and =", "5 ; a = b\t;\tc = \"q\" ; d\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc \r\nX-Other:\tv\r\n\r\n", "hello", "X-Sum=abc;X-Other=v;"},
		{"extension then trailer", "1;e\r\nx\r\n0;f=\"g\"\r\nT: 1\r\n\r\n", "x", "T=1;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := chunkResult{data: tt.data, consumed: len(tt.in), done: true, trailer: tt.trailer}
			in := tt.in + "GET / HTTP/1.1\r\n"
			if got := decodeWhole(t, ChunkLimits{}, in); got != want {
				t.Errorf("whole: got %+v, want %+v", got, want)
			}
			if got := decodeBytewise(t, ChunkLimits{}, in); got != want {
				t.Errorf("byte by byte: got %+v, want %+v", got, want)
			}
			for k := 1; k < len(tt.in); k++ {
				var d ChunkedDecoder
				got := decodePieces(t, &d, [][]byte{[]byte(in[:k]), []byte(in[k:])})
				if got != want {
					t.Fatalf("split at %d: got %+v, want %+v", k, got, want)
				}
			}
		})
	}
}

func TestChunkedInvalid(t *testing.T) {
	long := strings.Repeat("a", 5000)
	tests := []struct {
		name string
		in   string
		lim  ChunkLimits
	}{
		{"empty size", "\r\nhello\r\n0\r\n\r\n", ChunkLimits{}},
		{"not hex", "g\r\n", ChunkLimits{}},
		{"sign", "+5\r\nhello\r\n", ChunkLimits{}},
		{"negative", "-1\r\n", ChunkLimits{}},
		{"0x prefix", "0x5\r\nhello\r\n", ChunkLimits{}},
		{"leading space", " 5\r\nhello\r\n", ChunkLimits{}},
		{"trailing space without extension", "5 \r\nhello\r\n", ChunkLimits{}},
		{"16 hex digits", "1000000000000000\r\n", ChunkLimits{}},
		{"overflow", "ffffffffffffffffff\r\n", ChunkLimits{}},
		{"data too long", "5\r\nhelloX\r\n0\r\n\r\n", ChunkLimits{}},
		{"data too short", "5\r\nhell\r\n0\r\n\r\n", ChunkLimits{}},
		{"LF after data", "5\r\nhello\n0\r\n\r\n", ChunkLimits{}},
		{"CR only after data", "5\r\nhello\r0\r\n\r\n", ChunkLimits{}},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", ChunkLimits{}},
		{"bare CR after size", "5\rhello\r\n", ChunkLimits{}},
		{"CR CR LF", "5\r\r\nhello\r\n", ChunkLimits{}},
		{"bare LF after last chunk", "0\n\r\n", ChunkLimits{}},
		{"empty extension", "5;\r\nhello\r\n", ChunkLimits{}},
		{"extension without name", "5;=v\r\nhello\r\n", ChunkLimits{}},
		{"extension without value", "5;a=\r\nhello\r\n", ChunkLimits{}},
		{"space inside extension name", "5;a b\r\nhello\r\n", ChunkLimits{}},
		{"two names", "5;a;;b\r\nhello\r\n", ChunkLimits{}},
		{"whitespace before CRLF", "5;a \r\nhello\r\n", ChunkLimits{}},
		{"whitespace after value", "5;a=b \r\nhello\r\n", ChunkLimits{}},
		{"bad extension char", "5;a=b@c\r\nhello\r\n", ChunkLimits{}},
		{"CTL in quoted value", "5;a=\"b\x01\"\r\nhello\r\n", ChunkLimits{}},
		{"junk after quoted value", "5;a=\"b\"c\r\nhello\r\n", ChunkLimits{}},
		{"unterminated quoted value", "5;a=\"bc\r\nhello\r\n", ChunkLimits{}},
		{"line too long", "5;a=" + long + "\r\nhello\r\n", ChunkLimits{}},
		{"line over set limit", "5;abcdef\r\nhello\r\n", ChunkLimits{MaxChunkLine: 8}},
		{"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", ChunkLimits{}},
		{"trailer bare LF", "0\r\nA: b\n\r\n", ChunkLimits{}},
		{"trailer bare LF at end", "0\r\nA: b\r\n\n", ChunkLimits{}},
		{"trailer bare CR", "0\r\nA: b\rc\r\n\r\n", ChunkLimits{}},
		{"trailer space before colon", "0\r\nA : b\r\n\r\n", ChunkLimits{}},
		{"trailer NUL", "0\r\nA: \x00\r\n\r\n", ChunkLimits{}},
		{"trailer without colon", "0\r\nAb\r\n\r\n", ChunkLimits{}},
		{"trailer too large", "0\r\nA: " + strings.Repeat("v", 17<<10) + "\r\n\r\n", ChunkLimits{}},
		{"trailer over set limit", "0\r\nA: bcdefgh\r\n\r\n", ChunkLimits{MaxTrailerBytes: 12}},
		{"too many trailer fields", "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ChunkLimits{MaxTrailerFields: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := decodeWhole(t, tt.lim, tt.in)
			if whole.status != 400 {
				t.Fatalf("whole: got %+v, want status 400", whole)
			}
			bytewise := decodeBytewise(t, tt.lim, tt.in)
			if bytewise.status != 400 || bytewise.data != whole.data {
				t.Fatalf("byte by byte: got %+v, whole gave %+v", bytewise, whole)
			}
		})
	}
}

func TestChunkedIncomplete(t *testing.T) {
	for _, in := range []string{"", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "0\r\n", "0\r\nA: b\r\n", "0\r\n\r"} {
		if got := decodeWhole(t, ChunkLimits{}, in); got.status != -1 || got.done {
			t.Errorf("%q: got %+v, want incomplete", in, got)
		}
	}
}

func TestChunkedReset(t *testing.T) {
	var d ChunkedDecoder // zero value: default limits
	bad := decodePieces(t, &d, [][]byte{[]byte("zz\r\n")})
	if bad.status != 400 {
		t.Fatalf("got %+v", bad)
	}
	d.Reset(ChunkLimits{})
	r := decodePieces(t, &d, [][]byte{[]byte("3\r\nabc\r\n0\r\nA: 1\r\n\r\n")})
	if !r.done || r.data != "abc" || r.trailer != "A=1;" {
		t.Fatalf("after Reset: %+v", r)
	}
	d.Reset(ChunkLimits{})
	r = decodePieces(t, &d, [][]byte{[]byte("0\r\n\r\n")})
	if !r.done || r.trailer != "" {
		t.Fatalf("second body: %+v", r)
	}
}

func TestChunkedDoesNotAllocate(t *testing.T) {
	body := []byte(benchChunked)
	var d ChunkedDecoder
	run := func() {
		d.Reset(ChunkLimits{})
		p := body
		for !d.Done() {
			_, n, err := d.Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
	}
	run() // sizes the trailer buffer
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per body", a)
	}
}

var benchChunked = func() string {
	var b []byte
	data := []byte(strings.Repeat("0123456789abcdef", 256)) // 4 KiB
	for i := 0; i < 16; i++ {
		b = AppendChunkHeader(b, len(data))
		b = append(b, data...)
		b = AppendChunkEnd(b)
	}
	var tr message.Header
	tr.AddString("X-Checksum", "d41d8cd98f00b204e9800998ecf8427e")
	return string(AppendLastChunk(b, &tr))
}()

func BenchmarkChunkedDecode(b *testing.B) {
	body := []byte(benchChunked)
	var d ChunkedDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d.Reset(ChunkLimits{})
		p := body
		for !d.Done() {
			_, n, err := d.Decode(p)
			if err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
}
