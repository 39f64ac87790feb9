package tlsfp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func goH2Hello(t testing.TB) []byte {
	return goHello(t, &tls.Config{ServerName: "weir.test", NextProtos: []string{"h2", "http/1.1"}})
}

func sameHello(t *testing.T, got, want *ClientHello) {
	t.Helper()
	if got == nil {
		t.Fatal("no hello")
	}
	if got.JA4RO(TransportTCP) != want.JA4RO(TransportTCP) || got.JA3() != want.JA3() ||
		got.ServerName != want.ServerName || !slices.Equal(got.ALPN, want.ALPN) ||
		!slices.Equal(got.SupportedVersions, want.SupportedVersions) ||
		!slices.Equal(got.ECPointFormats, want.ECPointFormats) {
		t.Fatalf("hellos differ:\n%+v\n%+v", got, want)
	}
}

func TestParseGoHello(t *testing.T) {
	stream := goH2Hello(t)
	h, err := ParseClientHello(stream)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != tls.VersionTLS12 || h.ServerName != "weir.test" ||
		!slices.Equal(h.ALPN, []string{"h2", "http/1.1"}) ||
		!slices.Contains(h.SupportedVersions, tls.VersionTLS13) ||
		len(h.SignatureAlgorithms) == 0 || len(h.SupportedGroups) == 0 {
		t.Errorf("parsed %+v", h)
	}
	// The same message without the record layer, as QUIC carries it.
	q, err := ParseHandshake(stream[RecordHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	sameHello(t, q, h)
	if got, tcp := q.JA4(TransportQUIC), h.JA4(TransportTCP); got[0] != 'q' || got[1:] != tcp[1:] {
		t.Errorf("QUIC %s, TCP %s", got, tcp)
	}
}

// Every prefix of a hello is incomplete, and feeding the rest completes it,
// wherever the stream is cut.
func TestParserSplitAtEveryByte(t *testing.T) {
	stream := goH2Hello(t)
	want, err := ParseClientHello(stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(stream); i++ {
		var p Parser
		if h, err := p.Feed(stream[:i]); err != ErrIncomplete || h != nil {
			t.Fatalf("prefix %d: %v, %v", i, h, err)
		}
		if _, err := ParseClientHello(stream[:i]); err != ErrIncomplete {
			t.Fatalf("ParseClientHello prefix %d: %v", i, err)
		}
		h, err := p.Feed(stream[i:])
		if err != nil {
			t.Fatalf("split at %d: %v", i, err)
		}
		sameHello(t, h, want)
		// Once done, more bytes change nothing.
		if h2, err := p.Feed([]byte{0xff}); h2 != h || err != nil {
			t.Fatalf("after done: %v, %v", h2, err)
		}
	}
	// One byte at a time.
	var p Parser
	var h *ClientHello
	for i := range stream {
		h, err = p.Feed(stream[i : i+1])
		if (i < len(stream)-1) != (err == ErrIncomplete) {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	sameHello(t, h, want)
}

// The handshake message spread over several records, split at every
// position, and in 1-byte records.
func TestParseMultiRecord(t *testing.T) {
	stream := goH2Hello(t)
	want, _ := ParseClientHello(stream)
	msg := stream[RecordHeaderSize:]
	for i := 1; i < len(msg); i++ {
		var two []byte
		two = append(two, records(msg[:i], MaxRecordSize)...)
		two = append(two, records(msg[i:], MaxRecordSize)...)
		h, err := ParseClientHello(two)
		if err != nil {
			t.Fatalf("split at %d: %v", i, err)
		}
		sameHello(t, h, want)
	}
	tiny := records(msg, 1)
	h, err := ParseClientHello(tiny)
	if err != nil {
		t.Fatal(err)
	}
	sameHello(t, h, want)
	// Bytes after the hello (here, the start of another record) are
	// ignored.
	h, err = ParseClientHello(append(slices.Clone(stream), 20, 3, 3, 0, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	sameHello(t, h, want)
}

// A hello of MaxHandshakeSize bytes, which takes two full records, and one
// a byte larger.
func TestParseLargeHello(t *testing.T) {
	build := func(size int) []byte {
		h := hello{version: 0x0303, ciphers: []uint16{0x1301}, exts: []ext{{0x0000, sniData("weir.test")}, {0x0015, nil}}}
		h.exts[1].data = make([]byte, size-len(buildBody(h)))
		body := buildBody(h)
		if len(body) != size {
			t.Fatalf("body is %d bytes, want %d", len(body), size)
		}
		return body
	}
	stream := records(handshake(build(MaxHandshakeSize)), MaxRecordSize)
	if len(stream) != PeekBufferSize {
		t.Errorf("largest hello in full records: %d bytes, PeekBufferSize %d", len(stream), PeekBufferSize)
	}
	h, err := ParseClientHello(stream)
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerName != "weir.test" || !slices.Equal(h.Extensions, []uint16{0, 0x0015}) {
		t.Errorf("parsed %+v", h)
	}
	h, err = Peek(bufio.NewReaderSize(bytes.NewReader(stream), PeekBufferSize))
	if err != nil || h.ServerName != "weir.test" {
		t.Errorf("Peek: %v, %v", h, err)
	}

	body := build(MaxHandshakeSize + 1)
	// Rejected from the handshake header, before the body arrives.
	if _, err := ParseClientHello(records(handshake(body), MaxRecordSize)[:9]); err != ErrTooLarge {
		t.Errorf("oversize: %v", err)
	}
	if _, err := ParseHandshake(handshake(body)); err != ErrTooLarge {
		t.Errorf("oversize handshake: %v", err)
	}
}

func TestParseTLS12NoExtensions(t *testing.T) {
	body := buildBody(hello{version: 0x0301, ciphers: []uint16{0x002f, 0x0035}, noExts: true})
	h, err := ParseHandshake(handshake(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.JA3(), "769,47-53,,,"; got != want {
		t.Errorf("JA3 = %s, want %s", got, want)
	}
	if got, want := h.JA4(TransportTCP), "t10i020000_"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "_000000000000") {
		t.Errorf("JA4 = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	good := hello{version: 0x0303, ciphers: []uint16{0x1301}, exts: []ext{{0x0000, sniData("weir.test")}}}
	withExts := func(exts ...ext) []byte {
		h := good
		h.exts = exts
		return records(handshake(buildBody(h)), MaxRecordSize)
	}
	withBody := func(edit func([]byte) []byte) []byte {
		return records(handshake(edit(buildBody(good))), MaxRecordSize)
	}
	validMsg := handshake(buildBody(good))
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		{"one byte", []byte("G"), ErrNotTLS},
		{"sslv2", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, ErrNotTLS},
		{"alert first", []byte{21, 3, 3, 0, 2, 2, 40}, ErrNotTLS},
		{"record version", []byte{22, 4}, ErrNotTLS},
		{"server hello", records([]byte{2, 0, 0, 1, 0}, 100), ErrNotTLS},
		{"empty record", []byte{22, 3, 1, 0, 0}, ErrMalformed},
		{"record too long", []byte{22, 3, 1, 0x40, 0x01}, ErrMalformed},
		{"ccs between records", append(records(validMsg[:10], 100), 20, 3, 3, 0, 1, 1), ErrMalformed},
		{"bad second record version", append(records(validMsg[:10], 100), 22, 2, 3, 0, 1, 1), ErrMalformed},
		{"handshake too large", []byte{22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00}, ErrTooLarge},
		{"empty body", records([]byte{1, 0, 0, 0}, 100), ErrMalformed},
		{"short random", records(handshake([]byte{3, 3, 1, 2}), 100), ErrMalformed},
		{"session id too long", withBody(func(b []byte) []byte {
			out := append(slices.Clone(b[:34]), 33)
			out = append(out, make([]byte, 33)...)
			return append(out, b[35:]...)
		}), ErrMalformed},
		{"odd cipher length", withBody(func(b []byte) []byte { b[35+1] = 3; return b }), ErrMalformed},
		{"no ciphers", withBody(func(b []byte) []byte {
			return append(append(slices.Clone(b[:35]), 0, 0), b[39:]...)
		}), ErrMalformed},
		{"no compression", withBody(func(b []byte) []byte {
			return append(append(slices.Clone(b[:39]), 0), b[41:]...)
		}), ErrMalformed},
		{"extensions length short", withBody(func(b []byte) []byte { b[42]--; return b }), ErrMalformed},
		{"extensions length long", withBody(func(b []byte) []byte { b[42]++; return b }), ErrMalformed},
		{"truncated extension", withBody(func(b []byte) []byte { return append(b[:41], 0, 3, 0, 0, 0) }), ErrMalformed},
		{"extension data too long", withBody(func(b []byte) []byte { b[46]++; return b }), ErrMalformed},
		{"duplicate extension", withExts(ext{0x0017, nil}, ext{0x0000, sniData("a")}, ext{0x0017, nil}), ErrMalformed},
		{"duplicate GREASE extension", withExts(ext{0x0a0a, nil}, ext{0x0a0a, nil}), ErrMalformed},
		{"sni empty", withExts(ext{0x0000, nil}), ErrMalformed},
		{"sni empty list", withExts(ext{0x0000, vec16(nil)}), ErrMalformed},
		{"sni empty name", withExts(ext{0x0000, vec16([]byte{0, 0, 0})}), ErrMalformed},
		{"sni two host names", withExts(ext{0x0000, vec16(append(sniData("a")[2:], sniData("b")[2:]...))}), ErrMalformed},
		{"sni trailing", withExts(ext{0x0000, append(sniData("a"), 0)}), ErrMalformed},
		{"alpn empty protocol", withExts(ext{0x0010, vec16([]byte{0})}), ErrMalformed},
		{"alpn empty list", withExts(ext{0x0010, vec16(nil)}), ErrMalformed},
		{"alpn overrun", withExts(ext{0x0010, vec16([]byte{5, 'h', '2'})}), ErrMalformed},
		{"supported_versions odd", withExts(ext{0x002b, vec8([]byte{3, 4, 3})}), ErrMalformed},
		{"supported_versions empty", withExts(ext{0x002b, vec8(nil)}), ErrMalformed},
		{"groups odd", withExts(ext{0x000a, vec16([]byte{0, 29, 0})}), ErrMalformed},
		{"point formats empty", withExts(ext{0x000b, vec8(nil)}), ErrMalformed},
		{"sigalgs trailing", withExts(ext{0x000d, append(vec16(u16s(0x0403)), 0)}), ErrMalformed},
		{"sigalgs short", withExts(ext{0x000d, []byte{0, 4, 4, 3}}), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseClientHello(tc.stream)
			if !errors.Is(err, tc.want) || h != nil {
				t.Fatalf("got %v, %v; want %v", h, err, tc.want)
			}
			// The same verdict byte by byte: the parser never asks for
			// more once the input is known to be bad.
			var p Parser
			for i := range tc.stream {
				_, err = p.Feed(tc.stream[i : i+1])
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("byte by byte: %v; want %v", err, tc.want)
			}
		})
	}
}

func TestParseHandshakeErrors(t *testing.T) {
	msg := handshake(buildBody(hello{version: 0x0303, ciphers: []uint16{0x1301}}))
	if _, err := ParseHandshake(msg); err != nil {
		t.Fatal(err)
	}
	for i := range len(msg) {
		if _, err := ParseHandshake(msg[:i]); err != ErrIncomplete {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	if _, err := ParseHandshake(append(slices.Clone(msg), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := ParseHandshake([]byte{2, 0, 0, 0}); err != ErrNotTLS {
		t.Errorf("server hello: %v", err)
	}
}

func TestPeek(t *testing.T) {
	stream := goH2Hello(t)
	want, _ := ParseClientHello(stream)
	data := append(slices.Clone(stream), "after"...)
	// Byte by byte from the network, split into small records.
	tiny := append(records(stream[RecordHeaderSize:], 7), "after"...)
	for _, in := range [][]byte{data, tiny} {
		r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), PeekBufferSize)
		h, err := Peek(r)
		if err != nil {
			t.Fatal(err)
		}
		sameHello(t, h, want)
		all, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(all, in) {
			t.Fatalf("peek consumed bytes: %d of %d left, %v", len(all), len(in), err)
		}
	}

	// Not TLS: the answer comes from the first byte, without waiting for
	// more.
	r := bufio.NewReader(io.MultiReader(strings.NewReader("G"), blockingReader{t}))
	if _, err := Peek(r); err != ErrNotTLS {
		t.Errorf("http: %v", err)
	}

	// The stream ends inside the hello.
	r = bufio.NewReaderSize(bytes.NewReader(stream[:100]), PeekBufferSize)
	if _, err := Peek(r); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
	if _, err := Peek(bufio.NewReader(strings.NewReader(""))); err != io.EOF {
		t.Errorf("empty: %v", err)
	}

	// A buffer too small for the hello.
	r = bufio.NewReaderSize(bytes.NewReader(stream), 512)
	if _, err := Peek(r); !errors.Is(err, bufio.ErrBufferFull) {
		t.Errorf("small buffer: %v", err)
	}
}

// blockingReader fails the test if it is read: Peek must not wait for
// bytes it does not need.
type blockingReader struct{ t *testing.T }

func (b blockingReader) Read([]byte) (int, error) {
	b.t.Error("read past what was needed")
	return 0, io.EOF
}
