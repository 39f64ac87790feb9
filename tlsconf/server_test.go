package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
)

// sniServer serves four pairs: a default, an exact name, a wildcard, and
// one whose names are given explicitly.
func sniServer(t *testing.T, def int) *Server {
	t.Helper()
	dir := t.TempDir()
	c, k := selfSigned(t, "default.test")
	p0 := writePair(t, dir, "default", c, k)
	c, k = selfSigned(t, "www.example.com")
	p1 := writePair(t, dir, "www", c, k)
	c, k = selfSigned(t, "*.example.com")
	p2 := writePair(t, dir, "wild", c, k)
	c, k = selfSigned(t, "other.test")
	p3 := writePair(t, dir, "other", c, k)
	p3.Names = []string{"Alias.Example.ORG."}
	return newServer(t, ServerOptions{Certs: []CertFiles{p0, p1, p2, p3}, Default: def, ReloadInterval: -1})
}

func TestSNISelection(t *testing.T) {
	s := sniServer(t, 0)
	addr := serveTLS(t, s.TLSConfig())
	for _, tc := range []struct{ sni, want string }{
		{"", "default.test"},
		{"www.example.com", "www.example.com"}, // exact beats wildcard
		{"WWW.Example.COM", "www.example.com"},
		{"a.example.com", "*.example.com"},
		{"A.EXAMPLE.com", "*.example.com"},
		{"a.b.example.com", "default.test"}, // wildcard is one label deep
		{"example.com", "default.test"},     // wildcard needs a label
		{"unknown.test", "default.test"},
		{"alias.example.org", "other.test"}, // explicit names
		{"other.test", "default.test"},      // explicit names replace the certificate's
	} {
		if got := leafCN(t, addr, tc.sni); got != tc.want {
			t.Errorf("SNI %q: served %q, want %q", tc.sni, got, tc.want)
		}
	}
}

func TestSNIDefaultIndex(t *testing.T) {
	s := sniServer(t, 1)
	addr := serveTLS(t, s.TLSConfig())
	for _, sni := range []string{"", "unknown.test", "a.b.example.com"} {
		if got := leafCN(t, addr, sni); got != "www.example.com" {
			t.Errorf("SNI %q: served %q, want the default www.example.com", sni, got)
		}
	}
	var defaults []string
	for _, in := range s.Certificates() {
		if in.Default {
			defaults = append(defaults, in.CertFile)
		}
	}
	if len(defaults) != 1 || !strings.HasSuffix(defaults[0], "www.crt") {
		t.Errorf("Certificates marks %v as default, want only www.crt", defaults)
	}
}

// TestPickNormalizes covers spellings a Go client never sends but other
// clients may: a trailing dot and upper case.
func TestPickNormalizes(t *testing.T) {
	s := sniServer(t, 0)
	snap := s.cur.Load()
	for _, tc := range []struct{ sni, want string }{
		{"www.example.com.", "www.example.com"},
		{"A.Example.Com.", "*.example.com"},
		{"ALIAS.example.org", "other.test"},
		{".", "default.test"},
		{"com", "default.test"},
	} {
		c, err := snap.pick(&tls.ClientHelloInfo{ServerName: tc.sni})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Leaf.Subject.CommonName; got != tc.want {
			t.Errorf("SNI %q: picked %q, want %q", tc.sni, got, tc.want)
		}
	}
}

func TestCertificatesInfo(t *testing.T) {
	s := sniServer(t, 0)
	infos := s.Certificates()
	if len(infos) != 4 {
		t.Fatalf("got %d infos, want 4", len(infos))
	}
	want := [][]string{{"default.test"}, {"www.example.com"}, {"*.example.com"}, {"alias.example.org"}}
	for i, in := range infos {
		if strings.Join(in.Names, ",") != strings.Join(want[i], ",") {
			t.Errorf("pair %d serves %v, want %v", i, in.Names, want[i])
		}
		if in.NotAfter.Before(time.Now()) || in.Subject == "" {
			t.Errorf("pair %d: odd info %+v", i, in)
		}
	}
	if !infos[0].Default || infos[1].Default {
		t.Errorf("default flags wrong: %+v", infos)
	}
}

// rsaSelfSigned makes an RSA certificate for name.
func rsaSelfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"rsa"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// TestDualCertificates: with an ECDSA and an RSA certificate for one name,
// a client that only takes RSA gets the RSA one, others the first.
func TestDualCertificates(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "dual.test")
	ec := writePair(t, dir, "ec", c, k)
	c, k = rsaSelfSigned(t, "dual.test")
	rs := writePair(t, dir, "rsa", c, k)
	s := newServer(t, ServerOptions{Certs: []CertFiles{ec, rs}, ReloadInterval: -1})
	addr := serveTLS(t, s.TLSConfig())

	st, err := handshake(t, addr, &tls.Config{ServerName: "dual.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.PeerCertificates[0].PublicKey.(*rsa.PublicKey); ok {
		t.Error("a client that takes ECDSA got the RSA certificate; want the first pair")
	}
	st, err = handshake(t, addr, &tls.Config{
		ServerName:         "dual.test",
		InsecureSkipVerify: true,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.PeerCertificates[0].PublicKey.(*rsa.PublicKey); !ok {
		t.Error("an RSA-only client did not get the RSA certificate")
	}
}

func TestALPN(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "alpn.test")
	p := writePair(t, dir, "a", c, k)
	addr := serveTLS(t, newServer(t, ServerOptions{Certs: []CertFiles{p}, ReloadInterval: -1}).TLSConfig())
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"h2", "http/1.1"}, "h2"},
		{[]string{"http/1.1", "h2"}, "h2"}, // the server's preference wins
		{[]string{"http/1.1"}, "http/1.1"},
		{nil, ""},
	} {
		st, err := handshake(t, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: tc.offer})
		if err != nil {
			t.Fatalf("offer %v: %v", tc.offer, err)
		}
		if st.NegotiatedProtocol != tc.want {
			t.Errorf("offer %v: negotiated %q, want %q", tc.offer, st.NegotiatedProtocol, tc.want)
		}
	}

	only1 := serveTLS(t, newServer(t, ServerOptions{Certs: []CertFiles{p}, ALPN: []string{"http/1.1"}, ReloadInterval: -1}).TLSConfig())
	st, err := handshake(t, only1, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN [http/1.1] server negotiated %q", st.NegotiatedProtocol)
	}
}

func TestVersions(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "v.test")
	p := writePair(t, dir, "a", c, k)
	addr := serveTLS(t, newServer(t, ServerOptions{Certs: []CertFiles{p}, ReloadInterval: -1}).TLSConfig())

	if _, err := handshake(t, addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client was accepted")
	}
	st, err := handshake(t, addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	if st.Version != tls.VersionTLS12 {
		t.Errorf("version %x, want TLS 1.2", st.Version)
	}
	// A TLS 1.2 client limited to a CBC suite is refused: only AEAD suites.
	if _, err := handshake(t, addr, &tls.Config{
		InsecureSkipVerify: true,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
	}); err == nil {
		t.Error("a client offering only a CBC suite was accepted")
	}
	st, err = handshake(t, addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", st.Version)
	}

	addr13 := serveTLS(t, newServer(t, ServerOptions{Certs: []CertFiles{p}, MinVersion: "1.3", ReloadInterval: -1}).TLSConfig())
	if _, err := handshake(t, addr13, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("min_version 1.3 accepted a TLS 1.2 client")
	}
}

func TestSessionResumption(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "resume.test")
	p := writePair(t, dir, "a", c, k)
	addr := serveTLS(t, newServer(t, ServerOptions{Certs: []CertFiles{p}, ReloadInterval: -1}).TLSConfig())
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conf := &tls.Config{
			ServerName:         "resume.test",
			InsecureSkipVerify: true,
			MaxVersion:         v,
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
		st, err := handshake(t, addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		if st.DidResume {
			t.Errorf("version %x: first connection resumed", v)
		}
		st, err = handshake(t, addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		if !st.DidResume {
			t.Errorf("version %x: second connection did not resume", v)
		}
	}
}

// mtlsFixture is a server requiring client certificates from one CA.
type mtlsFixture struct {
	addr             string
	good, bad, plain *tls.Config
}

func newMTLS(t *testing.T, mode string) mtlsFixture {
	t.Helper()
	dir := t.TempDir()
	c, k := selfSigned(t, "mtls.test")
	p := writePair(t, dir, "srv", c, k)
	ca, other := newCA(t, "Client CA"), newCA(t, "Other CA")
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	s := newServer(t, ServerOptions{Certs: []CertFiles{p}, ClientAuth: mode, ClientCAFile: caFile, ReloadInterval: -1})
	client := func(ca *testCA) *tls.Config {
		cp, kp := ca.issue(t, "client", true)
		cert, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		// GetClientCertificate sends the certificate even when its CA is
		// not among those the server names, so the server must verify.
		return &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}}
	}
	return mtlsFixture{
		addr:  serveTLS(t, s.TLSConfig()),
		good:  client(ca),
		bad:   client(other),
		plain: &tls.Config{InsecureSkipVerify: true},
	}
}

func TestMutualTLS(t *testing.T) {
	for _, mode := range []string{ClientAuthRequireAndVerify, ""} {
		f := newMTLS(t, mode)
		if _, err := handshake(t, f.addr, f.plain); err == nil {
			t.Errorf("mode %q: client without certificate accepted", mode)
		}
		if _, err := handshake(t, f.addr, f.good); err != nil {
			t.Errorf("mode %q: client with a certificate from the right CA refused: %v", mode, err)
		}
		if _, err := handshake(t, f.addr, f.bad); err == nil {
			t.Errorf("mode %q: client with a certificate from another CA accepted", mode)
		}
	}

	f := newMTLS(t, ClientAuthVerifyIfGiven)
	if _, err := handshake(t, f.addr, f.plain); err != nil {
		t.Errorf("verify_if_given: client without certificate refused: %v", err)
	}
	if _, err := handshake(t, f.addr, f.bad); err == nil {
		t.Error("verify_if_given: client with a certificate from another CA accepted")
	}
}

func TestClientAuthOptions(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "x.test")
	p := writePair(t, dir, "a", c, k)
	ca := writeFile(t, dir, "ca.pem", newCA(t, "CA").pem)
	for _, tc := range []struct {
		mode, ca, want string
	}{
		{"require_and_verify", "", "needs a client CA file"},
		{"verify_if_given", "", "needs a client CA file"},
		{"none", ca, "client CA file is set"},
		{"sometimes", "", "want one of"},
	} {
		_, err := NewServer(ServerOptions{Certs: []CertFiles{p}, ClientAuth: tc.mode, ClientCAFile: tc.ca})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mode %q ca %q: error %v, want one containing %q", tc.mode, tc.ca, err, tc.want)
		}
	}
	for _, mode := range []string{"", "none", "request", "require"} {
		s, err := NewServer(ServerOptions{Certs: []CertFiles{p}, ClientAuth: mode, ReloadInterval: -1})
		if err != nil {
			t.Errorf("mode %q: %v", mode, err)
			continue
		}
		s.Close()
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	c2, k2 := selfSigned(t, "b.test")
	good := writePair(t, dir, "good", c, k)
	other := writePair(t, dir, "other", c2, k2)
	junk := writeFile(t, dir, "junk.pem", []byte("this is not PEM\n"))
	missing := filepath.Join(dir, "missing.pem")
	enc := writeFile(t, dir, "enc.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	for _, tc := range []struct {
		name  string
		certs []CertFiles
		want  string
	}{
		{"no cert in file", []CertFiles{{CertFile: junk, KeyFile: good.KeyFile}}, "tls: " + junk + ": no certificate found in file"},
		{"swapped", []CertFiles{{CertFile: good.KeyFile, KeyFile: good.CertFile}}, "are the certificate and key files swapped?"},
		{"no key in file", []CertFiles{{CertFile: good.CertFile, KeyFile: junk}}, "tls: " + junk + ": no private key found in file"},
		{"mismatch", []CertFiles{{CertFile: good.CertFile, KeyFile: other.KeyFile}}, "tls: " + other.KeyFile + ": private key does not match certificate " + good.CertFile},
		{"missing", []CertFiles{{CertFile: missing, KeyFile: good.KeyFile}}, "tls: " + missing + ": cannot read: no such file or directory"},
		{"encrypted", []CertFiles{{CertFile: good.CertFile, KeyFile: enc}}, "private key is encrypted"},
		{"no key file", []CertFiles{{CertFile: good.CertFile}}, "both a certificate file and a key file"},
		{"bad name", []CertFiles{{CertFile: good.CertFile, KeyFile: good.KeyFile, Names: []string{"a.*.test"}}}, `name "a.*.test"`},
		{"none", nil, "no certificate configured"},
	} {
		_, err := NewServer(ServerOptions{Certs: tc.certs})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := NewServer(ServerOptions{Certs: []CertFiles{good}, Default: 1}); err == nil {
		t.Error("default index out of range accepted")
	}
	if _, err := NewServer(ServerOptions{Certs: []CertFiles{good}, MinVersion: "1.1"}); err == nil || !strings.Contains(err.Error(), "before 1.2") {
		t.Errorf("min_version 1.1: %v", err)
	}
	if _, err := NewServer(ServerOptions{Certs: []CertFiles{good}, ClientCAFile: junk}); err == nil || !strings.Contains(err.Error(), junk+": no certificate found") {
		t.Errorf("bad CA file: %v", err)
	}
}

// reloadFixture is a server with one pair whose files the test rewrites.
type reloadFixture struct {
	dir    string
	files  CertFiles
	addr   string
	errs   chan error
	server *Server
}

func newReload(t *testing.T) *reloadFixture {
	t.Helper()
	f := &reloadFixture{dir: t.TempDir(), errs: make(chan error, 16)}
	c, k := selfSigned(t, "a.test")
	f.files = writePair(t, f.dir, "site", c, k)
	f.server = newServer(t, ServerOptions{
		Certs:          []CertFiles{f.files},
		ReloadInterval: 10 * time.Millisecond,
		OnReload: func(err error) {
			if err != nil {
				select {
				case f.errs <- err:
				default:
				}
			}
		},
	})
	f.addr = serveTLS(t, f.server.TLSConfig())
	if got := leafCN(t, f.addr, "a.test"); got != "a.test" {
		t.Fatalf("served %q before any change", got)
	}
	return f
}

// waitErr waits for OnReload to report an error containing want; other
// reports (a check may catch a file half written) are skipped.
func (f *reloadFixture) waitErr(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-f.errs:
			if strings.Contains(err.Error(), want) {
				return
			}
			t.Logf("skipping report: %v", err)
		case <-timeout:
			t.Fatalf("no reload error containing %q was reported", want)
		}
	}
}

// waitServed polls handshakes until the leaf's common name is want.
func (f *reloadFixture) waitServed(t *testing.T, want string) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "the server to serve "+want, func() bool {
		return leafCN(t, f.addr, "a.test") == want
	})
}

func TestReloadOverwrite(t *testing.T) {
	f := newReload(t)
	c, k := selfSigned(t, "b.test", "a.test")
	// Key first, then certificate: between the two writes the pair does
	// not match, which must not take the old one out of service.
	writeFile(t, f.dir, "site.key", k)
	writeFile(t, f.dir, "site.crt", c)
	f.waitServed(t, "b.test")
	if names := f.server.Certificates()[0].Names; strings.Join(names, ",") != "b.test,a.test" {
		t.Errorf("names after reload %v", names)
	}
	select {
	case err := <-f.errs:
		t.Errorf("a rotation writing the key, then the certificate, reported %v", err)
	default:
	}
}

func TestReloadRename(t *testing.T) {
	f := newReload(t)
	c, k := selfSigned(t, "b.test")
	for _, x := range []struct {
		name string
		b    []byte
	}{{"site.crt", c}, {"site.key", k}} {
		tmp := writeFile(t, f.dir, "."+x.name+".tmp", x.b)
		if err := os.Rename(tmp, filepath.Join(f.dir, x.name)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitServed(t, "b.test")
}

// TestReloadSymlinkSwap follows the layout of a Kubernetes secret volume:
// site.crt -> ..data/site.crt, ..data -> a versioned directory, and an
// update swaps the ..data link.
func TestReloadSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name string, certPEM, keyPEM []byte) {
		v := filepath.Join(dir, name)
		if err := os.Mkdir(v, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, v, "site.crt", certPEM)
		writeFile(t, v, "site.key", keyPEM)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	c, k := selfSigned(t, "a.test")
	version("..v1", c, k)
	for _, n := range []string{"site.crt", "site.key"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, ServerOptions{
		Certs:          []CertFiles{{CertFile: filepath.Join(dir, "site.crt"), KeyFile: filepath.Join(dir, "site.key")}},
		ReloadInterval: 10 * time.Millisecond,
	})
	addr := serveTLS(t, s.TLSConfig())
	if got := leafCN(t, addr, "a.test"); got != "a.test" {
		t.Fatalf("served %q", got)
	}
	c, k = selfSigned(t, "b.test")
	version("..v2", c, k)
	testkit.WaitFor(t, 10*time.Second, "the swapped certificate", func() bool {
		return leafCN(t, addr, "a.test") == "b.test"
	})
}

func TestReloadBrokenKeepsOld(t *testing.T) {
	f := newReload(t)
	writeFile(t, f.dir, "site.crt", []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	f.waitErr(t, f.files.CertFile+": no certificate found in file")
	if got := leafCN(t, f.addr, "a.test"); got != "a.test" {
		t.Errorf("after a broken replacement the server serves %q, want the old a.test", got)
	}

	// A key that does not match, then the file removed: each reported,
	// the old pair still served.
	c, _ := selfSigned(t, "c.test")
	writeFile(t, f.dir, "site.crt", c)
	f.waitErr(t, f.files.KeyFile+": private key does not match certificate "+f.files.CertFile)
	if err := os.Remove(f.files.CertFile); err != nil {
		t.Fatal(err)
	}
	f.waitErr(t, f.files.CertFile+": cannot read: no such file or directory")
	if got := leafCN(t, f.addr, "a.test"); got != "a.test" {
		t.Errorf("served %q, want the old a.test", got)
	}

	// A good pair afterwards is picked up.
	c, k := selfSigned(t, "d.test")
	writeFile(t, f.dir, "site.key", k)
	writeFile(t, f.dir, "site.crt", c)
	f.waitServed(t, "d.test")
}

func TestReloadClientCA(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "mtls.test")
	p := writePair(t, dir, "srv", c, k)
	ca1, ca2 := newCA(t, "CA one"), newCA(t, "CA two")
	caFile := writeFile(t, dir, "ca.pem", ca1.pem)
	s := newServer(t, ServerOptions{Certs: []CertFiles{p}, ClientCAFile: caFile, ReloadInterval: 10 * time.Millisecond})
	addr := serveTLS(t, s.TLSConfig())
	client := func(ca *testCA) *tls.Config {
		cp, kp := ca.issue(t, "client", true)
		cert, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		// GetClientCertificate sends the certificate even when its CA is
		// not among those the server names, so the server must verify.
		return &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}}
	}
	c1, c2 := client(ca1), client(ca2)
	if _, err := handshake(t, addr, c1); err != nil {
		t.Fatalf("client of CA one refused: %v", err)
	}
	if _, err := handshake(t, addr, c2); err == nil {
		t.Fatal("client of CA two accepted before the CA file changed")
	}
	writeFile(t, dir, "ca.pem", ca2.pem)
	testkit.WaitFor(t, 10*time.Second, "the new client CA", func() bool {
		_, err := handshake(t, addr, c2)
		return err == nil
	})
	if _, err := handshake(t, addr, c1); err == nil {
		t.Error("client of CA one still accepted after the CA file changed")
	}
}

func TestReloadOnDemand(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	p := writePair(t, dir, "site", c, k)
	var reports []error
	s := newServer(t, ServerOptions{Certs: []CertFiles{p}, ReloadInterval: -1, OnReload: func(err error) { reports = append(reports, err) }})
	addr := serveTLS(t, s.TLSConfig())
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 0 {
		t.Errorf("a check without changes reported %v", reports)
	}
	c, k = selfSigned(t, "b.test")
	writeFile(t, dir, "site.key", k)
	writeFile(t, dir, "site.crt", c)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := leafCN(t, addr, "a.test"); got != "b.test" {
		t.Errorf("after Reload served %q, want b.test", got)
	}
	if len(reports) != 1 || reports[0] != nil {
		t.Errorf("OnReload got %v, want one nil", reports)
	}
	writeFile(t, dir, "site.crt", []byte("junk"))
	if err := s.Reload(); err == nil {
		t.Error("Reload of a broken file returned nil")
	}
	// The same broken contents are reported once, not at every check.
	if err := s.Reload(); err != nil {
		t.Errorf("second check of the same broken file: %v", err)
	}
}

func TestCloseStopsPolling(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	p := writePair(t, dir, "site", c, k)
	s, err := NewServer(ServerOptions{Certs: []CertFiles{p}, ReloadInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	select {
	case <-s.done:
	default:
		t.Fatal("poller still running after Close")
	}
}

// TestKeyFormats loads keys in every accepted encoding.
func TestKeyFormats(t *testing.T) {
	dir := t.TempDir()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		blk  *pem.Block
	}{
		{"sec1", ecKey, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}},
		{"ed25519", edKey, &pem.Block{Type: "PRIVATE KEY", Bytes: pk8}},
	} {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: tc.name + ".test"},
			DNSNames:     []string{tc.name + ".test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, tc.key.Public(), tc.key)
		if err != nil {
			t.Fatal(err)
		}
		p := writePair(t, dir, tc.name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(tc.blk))
		s := newServer(t, ServerOptions{Certs: []CertFiles{p}, ReloadInterval: -1})
		// The outer config's GetCertificate serves callers that bypass
		// GetConfigForClient.
		c, err := s.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: tc.name + ".test"})
		if err != nil || c.Leaf.Subject.CommonName != tc.name+".test" {
			t.Errorf("%s: got %v, %v", tc.name, c, err)
		}
	}
	bad := writeFile(t, dir, "bad.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}))
	c, _ := selfSigned(t, "x.test")
	_, err := NewServer(ServerOptions{Certs: []CertFiles{{CertFile: writeFile(t, dir, "x.crt", c), KeyFile: bad}}})
	if err == nil || !strings.Contains(err.Error(), bad+": private key cannot be parsed") {
		t.Errorf("bad key: %v", err)
	}
}
