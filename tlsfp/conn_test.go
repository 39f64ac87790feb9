package tlsfp

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// handshakeResult is what the server side of one test connection saw.
type handshakeResult struct {
	hello   *ClientHello // from Lookup on the *tls.Conn after the handshake
	info    *tls.ClientHelloInfo
	inHook  *ClientHello // from ClientHelloInfo.Conn in GetConfigForClient
	hookErr error
}

// serveOne accepts one connection on a loopback listener, wraps it in Conn,
// runs a TLS handshake with a Go client using clientCfg, and reports what
// the server saw.
func serveOne(t *testing.T, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		var res handshakeResult
		defer func() { done <- res }()
		raw, err := ln.Accept()
		if err != nil {
			res.hookErr = err
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		fc := NewConn(raw)
		base := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}}
		cfg := base.Clone()
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			res.info = hi
			res.inHook = Lookup(hi.Conn)
			return nil, nil
		}
		tc := tls.Server(fc, cfg)
		if err := tc.Handshake(); err != nil {
			res.hookErr = err
			return
		}
		res.hello = Lookup(tc)
		if res.hello != fc.ClientHello() || fc.Err() != nil {
			res.hookErr = fmt.Errorf("Lookup and ClientHello disagree, Err %v", fc.Err())
		}
		// Data after the handshake passes through the Conn unchanged.
		buf := make([]byte, 5)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "hello" {
			res.hookErr = fmt.Errorf("read after handshake: %q, %v", buf, err)
		}
	}()
	cfg := clientCfg.Clone()
	cfg.InsecureSkipVerify = true
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	res := <-done
	c.Close()
	if res.hookErr != nil {
		t.Fatal(res.hookErr)
	}
	return res
}

// sha12 is the JA4 list hash, written out independently of the package.
func sha12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

func hexList(vs []uint16) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%04x", v)
	}
	return strings.Join(parts, ",")
}

func TestConnGoClient(t *testing.T) {
	res := serveOne(t, &tls.Config{ServerName: "weir.test", NextProtos: []string{"h2", "http/1.1"}})
	h, hi := res.hello, res.info
	if h == nil || res.inHook != h {
		t.Fatalf("hello %v, in GetConfigForClient %v", h, res.inHook)
	}
	// crypto/tls's own view of the same hello.
	if h.ServerName != "weir.test" || h.ServerName != hi.ServerName {
		t.Errorf("ServerName %q, crypto/tls %q", h.ServerName, hi.ServerName)
	}
	if !slices.Equal(h.ALPN, []string{"h2", "http/1.1"}) || !slices.Equal(h.ALPN, hi.SupportedProtos) {
		t.Errorf("ALPN %q, crypto/tls %q", h.ALPN, hi.SupportedProtos)
	}
	for _, c := range []struct {
		name      string
		got, want []uint16
	}{
		{"cipher suites", h.CipherSuites, hi.CipherSuites},
		{"extensions", h.Extensions, hi.Extensions},
		{"supported versions", h.SupportedVersions, hi.SupportedVersions},
		{"signature algorithms", h.SignatureAlgorithms, sigSchemes(hi.SignatureSchemes)},
		{"groups", h.SupportedGroups, curveIDs(hi.SupportedCurves)},
	} {
		if !slices.Equal(c.got, c.want) || len(c.got) == 0 {
			t.Errorf("%s: %04x, crypto/tls %04x", c.name, c.got, c.want)
		}
	}
	if !bytes.Equal(h.ECPointFormats, hi.SupportedPoints) {
		t.Errorf("point formats %v, crypto/tls %v", h.ECPointFormats, hi.SupportedPoints)
	}
	// A Go client offers every TLS 1.3 suite.
	for _, s := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		if !slices.Contains(h.CipherSuites, s) {
			t.Errorf("cipher suites %04x lack %04x", h.CipherSuites, s)
		}
	}

	// JA4 worked out by hand from crypto/tls's view: TCP, TLS 1.3, SNI,
	// the counts (Go sends no GREASE), "h2"; then the two hashes.
	exts := slices.DeleteFunc(slices.Clone(hi.Extensions), func(e uint16) bool { return e == 0 || e == 16 })
	slices.Sort(exts)
	ciphers := slices.Sorted(slices.Values(hi.CipherSuites))
	a := fmt.Sprintf("t13d%02d%02dh2", len(hi.CipherSuites), len(hi.Extensions))
	want := a + "_" + sha12(hexList(ciphers)) + "_" + sha12(hexList(exts)+"_"+hexList(sigSchemes(hi.SignatureSchemes)))
	if got := h.JA4(TransportTCP); got != want {
		t.Errorf("JA4 = %s, want %s", got, want)
	}
	if !strings.HasPrefix(h.JA4(TransportTCP), "t13d") || !strings.HasPrefix(h.JA4(TransportTCP)[8:], "h2_") {
		t.Errorf("JA4 a part: %s", h.JA4(TransportTCP))
	}
	t.Logf("Go client: JA4 %s, JA3 %s (%s)", h.JA4(TransportTCP), h.JA3Hash(), h.JA3())
}

func sigSchemes(s []tls.SignatureScheme) []uint16 {
	out := make([]uint16, len(s))
	for i, v := range s {
		out[i] = uint16(v)
	}
	return out
}

func curveIDs(s []tls.CurveID) []uint16 {
	out := make([]uint16, len(s))
	for i, v := range s {
		out[i] = uint16(v)
	}
	return out
}

// The fingerprints are stable for one client configuration and change
// with it.
func TestConnFingerprintsStableAndDistinct(t *testing.T) {
	base := &tls.Config{ServerName: "weir.test", NextProtos: []string{"h2", "http/1.1"}}
	first := serveOne(t, base).hello
	second := serveOne(t, base).hello
	if first.JA4(TransportTCP) != second.JA4(TransportTCP) || first.JA3Hash() != second.JA3Hash() {
		t.Errorf("same client, different fingerprints: %s %s, %s %s",
			first.JA4(TransportTCP), second.JA4(TransportTCP), first.JA3Hash(), second.JA3Hash())
	}

	alpn := base.Clone()
	alpn.NextProtos = []string{"http/1.1"}
	h1 := serveOne(t, alpn).hello
	if got, ref := h1.JA4(TransportTCP), first.JA4(TransportTCP); got == ref || got[8:10] != "h1" || got[10:] != ref[10:] {
		t.Errorf("other ALPN: %s, was %s", got, ref)
	}

	noSNI := &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	ip := serveOne(t, noSNI).hello
	if got, ref := ip.JA4(TransportTCP), first.JA4(TransportTCP); got[3] != 'i' || got[:3] != ref[:3] ||
		got[10:] != ref[10:] || ip.ServerName != "" {
		t.Errorf("no SNI: %s, was %s", got, ref)
	}

	ciphers := base.Clone()
	ciphers.MaxVersion = tls.VersionTLS12
	ciphers.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	t12 := serveOne(t, ciphers).hello
	if !slices.Equal(t12.CipherSuites, ciphers.CipherSuites) {
		t.Errorf("TLS 1.2 cipher suites %04x", t12.CipherSuites)
	}
	if got := t12.JA4(TransportTCP); !strings.HasPrefix(got, "t12d01") || got[11:23] == first.JA4(TransportTCP)[11:23] {
		t.Errorf("TLS 1.2 JA4 %s", got)
	}
	if t12.JA3Hash() == first.JA3Hash() {
		t.Error("JA3 unchanged with other ciphers")
	}
}

func TestConnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *ClientHello, 1)
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	go func() {
		c, err := tls.NewListener(NewListener(ln), cfg).Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tc.Handshake()
		got <- Lookup(tc)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "weir.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := <-got; h == nil || h.ServerName != "weir.test" {
		t.Fatalf("hello %+v", h)
	}
}

func TestFingerprintHook(t *testing.T) {
	stream := goH2Hello(t)
	want, _ := ParseClientHello(stream)
	nc, fp := Fingerprint(&fakeConn{r: bytes.NewReader(stream[:10])})
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatal(err)
	}
	if ja3, ja4 := fp(); ja3 != "" || ja4 != "" {
		t.Errorf("incomplete hello: %q %q", ja3, ja4)
	}
	nc, fp = Fingerprint(&fakeConn{r: bytes.NewReader(stream)})
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatal(err)
	}
	if ja3, ja4 := fp(); ja3 != want.JA3Hash() || ja4 != want.JA4(TransportTCP) {
		t.Errorf("got %q %q", ja3, ja4)
	}
}

// wrapped is a connection layer that exposes the one below it.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

func TestLookupUnwraps(t *testing.T) {
	stream := goH2Hello(t)
	inner := &fakeConn{r: bytes.NewReader(stream)}
	c := NewConn(inner)
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if c.NetConn() != inner {
		t.Error("NetConn is not the wrapped connection")
	}
	var nc net.Conn = c
	for range maxUnwrap - 1 {
		nc = wrapped{nc}
	}
	if h := Lookup(nc); h == nil || h != c.ClientHello() {
		t.Errorf("Lookup through %d layers: %v", maxUnwrap-1, h)
	}
	if h := Lookup(wrapped{nc}); h != nil {
		t.Error("Lookup went deeper than maxUnwrap")
	}
}

// fakeConn serves reads from r; writes are discarded.
type fakeConn struct {
	net.Conn // nil: only Read and Close are used
	r        io.Reader
}

func (f *fakeConn) Read(b []byte) (int, error) { return f.r.Read(b) }

func TestConnPassesBytesThrough(t *testing.T) {
	stream := goH2Hello(t)
	want, _ := ParseClientHello(stream)
	tail := []byte("trailing application bytes")
	in := append(slices.Clone(stream), tail...)
	tiny := append(records(stream[RecordHeaderSize:], 3), tail...)
	for _, tc := range []struct {
		name string
		in   []byte
		r    func(io.Reader) io.Reader
	}{
		{"whole", in, func(r io.Reader) io.Reader { return r }},
		{"one byte", in, iotest.OneByteReader},
		{"half", in, iotest.HalfReader},
		{"tiny records", tiny, iotest.OneByteReader},
		{"data with eof", in, iotest.DataErrReader},
		{"timeout midway", in, func(r io.Reader) io.Reader { return &timeoutOnce{r: r, at: 100} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r(bytes.NewReader(tc.in))
			c := NewConn(&fakeConn{r: r})
			if c.ClientHello() != nil || c.Err() != ErrIncomplete {
				t.Fatal("hello before any read")
			}
			var got []byte
			buf := make([]byte, 700)
			for {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil && !isTimeout(err) {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tc.in) {
				t.Fatalf("bytes changed: %d in, %d out", len(tc.in), len(got))
			}
			sameHello(t, c.ClientHello(), want)
			if c.Err() != nil || c.p.msg != nil {
				t.Errorf("Err %v, buffer kept: %d", c.Err(), cap(c.p.msg))
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// timeoutOnce fails one read with a timeout after at bytes.
type timeoutOnce struct {
	r    io.Reader
	at   int
	read int
	done bool
}

func (t *timeoutOnce) Read(b []byte) (int, error) {
	if !t.done && t.read+len(b) > t.at {
		t.done = true
		n, _ := t.r.Read(b[:t.at-t.read])
		t.read += n
		return n, timeoutErr{}
	}
	n, err := t.r.Read(b)
	t.read += n
	return n, err
}

func TestConnNotTLS(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n"
	c := NewConn(&fakeConn{r: strings.NewReader(in)})
	got, err := io.ReadAll(c)
	if err != nil || string(got) != in {
		t.Fatalf("%q, %v", got, err)
	}
	if c.ClientHello() != nil || c.Err() != ErrNotTLS {
		t.Errorf("hello %v, Err %v", c.ClientHello(), c.Err())
	}
	if Lookup(c) != nil || Lookup(nil) != nil || Lookup(&fakeConn{}) != nil {
		t.Error("Lookup found a hello")
	}
}

func TestConnEndsEarly(t *testing.T) {
	stream := goH2Hello(t)
	c := NewConn(&fakeConn{r: bytes.NewReader(stream[:200])})
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if c.ClientHello() != nil || c.Err() != ErrIncomplete || c.p.msg != nil {
		t.Errorf("hello %v, Err %v", c.ClientHello(), c.Err())
	}
	bad := slices.Clone(stream)
	bad[RecordHeaderSize+HandshakeHeaderSize+34] = 33 // session id length
	c = NewConn(&fakeConn{r: bytes.NewReader(bad)})
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if c.ClientHello() != nil || !errors.Is(c.Err(), ErrMalformed) {
		t.Errorf("hello %v, Err %v", c.ClientHello(), c.Err())
	}
}

func BenchmarkParseClientHello(b *testing.B) {
	stream := goH2Hello(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClientHello(stream); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJA4(b *testing.B) {
	h, _ := ParseClientHello(goH2Hello(b))
	b.ReportAllocs()
	for b.Loop() {
		_ = h.JA4(TransportTCP)
	}
}
