package tlsfp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// ext is one extension for buildBody.
type ext struct {
	typ  uint16
	data []byte
}

// hello describes a ClientHello for buildBody.
type hello struct {
	version   uint16
	sessionID []byte
	ciphers   []uint16
	exts      []ext
	noExts    bool // end the body after the compression methods
}

func be16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func vec16(data []byte) []byte { return append(be16(nil, uint16(len(data))), data...) }

func vec8(data []byte) []byte { return append([]byte{byte(len(data))}, data...) }

func u16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = be16(b, v)
	}
	return b
}

func sniData(name string) []byte {
	entry := append([]byte{0}, vec16([]byte(name))...)
	return vec16(entry)
}

func alpnData(protos ...string) []byte {
	var list []byte
	for _, p := range protos {
		list = append(list, vec8([]byte(p))...)
	}
	return vec16(list)
}

// buildBody encodes h as a ClientHello body (no handshake header).
func buildBody(h hello) []byte {
	var b []byte
	b = be16(b, h.version)
	b = append(b, make([]byte, 32)...) // random
	b = append(b, vec8(h.sessionID)...)
	b = append(b, vec16(u16s(h.ciphers...))...)
	b = append(b, 1, 0) // compression: null
	if h.noExts {
		return b
	}
	var exts []byte
	for _, e := range h.exts {
		exts = be16(exts, e.typ)
		exts = append(exts, vec16(e.data)...)
	}
	return append(b, vec16(exts)...)
}

// handshake wraps a body in a ClientHello handshake header.
func handshake(body []byte) []byte {
	n := len(body)
	return append([]byte{1, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// records frames msg as handshake records whose payloads are at most size
// bytes.
func records(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		k := min(size, len(msg))
		out = append(out, 22, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

// goHello returns the first flight of a Go TLS client with cfg: the
// ClientHello in one record.
func goHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		defer a.Close()
		c := tls.Client(a, cfg)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_ = c.Handshake()
	}()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<16)
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

var (
	certOnce sync.Once
	cert     tls.Certificate
)

// testCert returns a self-signed certificate for "weir.test".
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "weir.test"},
			DNSNames:     []string{"weir.test"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return cert
}
