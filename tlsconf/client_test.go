package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
)

// upstream is a TLS origin that records what clients sent.
type upstream struct {
	addr string
	mu   sync.Mutex
	snis []string
	cns  []string // client certificate common names, "" for none
}

// newUpstream serves certPEM/keyPEM and asks clients for a certificate
// without verifying it.
func newUpstream(t *testing.T, certPEM, keyPEM []byte) *upstream {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"h2", "http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			u.mu.Lock()
			u.snis = append(u.snis, hello.ServerName)
			u.mu.Unlock()
			return nil, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			cn := ""
			if len(cs.PeerCertificates) > 0 {
				cn = cs.PeerCertificates[0].Subject.CommonName
			}
			u.mu.Lock()
			u.cns = append(u.cns, cn)
			u.mu.Unlock()
			return nil
		},
	}
	u.addr = serveTLS(t, conf)
	return u
}

func (u *upstream) last() (sni, cn string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.snis[len(u.snis)-1], u.cns[len(u.cns)-1]
}

func newClient(t *testing.T, o ClientOptions) *tls.Config {
	t.Helper()
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientVerifiesByDefault(t *testing.T) {
	c, k := selfSigned(t, "origin.test", "127.0.0.1")
	u := newUpstream(t, c, k)
	_, err := handshake(t, u.addr, newClient(t, ClientOptions{}))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("self-signed upstream with default options: error %v, want an unknown authority", err)
	}

	conf := newClient(t, ClientOptions{InsecureSkipVerify: true})
	if _, err := handshake(t, u.addr, conf); err != nil {
		t.Fatalf("insecure_skip_verify: %v", err)
	}
}

func TestClientCustomCA(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "Upstream CA")
	c, k := ca.issue(t, "origin", false, "origin.test")
	u := newUpstream(t, c, k)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)

	conf := newClient(t, ClientOptions{CAFile: caFile, ServerName: "origin.test"})
	st, err := handshake(t, u.addr, conf)
	if err != nil {
		t.Fatalf("custom CA: %v", err)
	}
	if len(st.VerifiedChains) == 0 {
		t.Error("no verified chain")
	}
	if sni, _ := u.last(); sni != "origin.test" {
		t.Errorf("upstream saw SNI %q, want origin.test", sni)
	}

	// The name is checked: the SNI override must match the certificate.
	conf = newClient(t, ClientOptions{CAFile: caFile, ServerName: "wrong.test"})
	if _, err := handshake(t, u.addr, conf); err == nil || !strings.Contains(err.Error(), "wrong.test") {
		t.Errorf("wrong server name: error %v", err)
	}

	// Another CA's file does not verify this upstream.
	other := writeFile(t, dir, "other.pem", newCA(t, "Other").pem)
	conf = newClient(t, ClientOptions{CAFile: other, ServerName: "origin.test"})
	if _, err := handshake(t, u.addr, conf); err == nil {
		t.Error("upstream verified against an unrelated CA")
	}
}

func TestClientForHost(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "Upstream CA")
	c, k := ca.issue(t, "origin", false, "origin.test")
	u := newUpstream(t, c, k)
	conf := newClient(t, ClientOptions{CAFile: writeFile(t, dir, "ca.pem", ca.pem)})

	per := ForHost(conf, "origin.test:443")
	if per == conf || per.ServerName != "origin.test" {
		t.Fatalf("ForHost gave ServerName %q", per.ServerName)
	}
	if per.ClientSessionCache != conf.ClientSessionCache {
		t.Error("ForHost copy does not share the session cache")
	}
	if _, err := handshake(t, u.addr, per); err != nil {
		t.Fatal(err)
	}
	if sni, _ := u.last(); sni != "origin.test" {
		t.Errorf("upstream saw SNI %q", sni)
	}
	if ForHost(conf, "origin.test").ServerName != "origin.test" {
		t.Error("ForHost without a port")
	}
	fixed := newClient(t, ClientOptions{ServerName: "fixed.test"})
	if ForHost(fixed, "origin.test:443") != fixed {
		t.Error("ForHost replaced a configured server name")
	}
}

func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "origin.test")
	u := newUpstream(t, c, k)
	clientCA := newCA(t, "Client CA")
	cc, ck := clientCA.issue(t, "weir-client", true)
	files := writePair(t, dir, "client", cc, ck)

	conf := newClient(t, ClientOptions{InsecureSkipVerify: true, CertFile: files.CertFile, KeyFile: files.KeyFile})
	if _, err := handshake(t, u.addr, conf); err != nil {
		t.Fatal(err)
	}
	if _, cn := u.last(); cn != "weir-client" {
		t.Errorf("upstream saw client certificate %q, want weir-client", cn)
	}

	conf = newClient(t, ClientOptions{InsecureSkipVerify: true})
	if _, err := handshake(t, u.addr, conf); err != nil {
		t.Fatal(err)
	}
	if _, cn := u.last(); cn != "" {
		t.Errorf("a client without a certificate presented %q", cn)
	}
}

func TestClientALPNAndResumption(t *testing.T) {
	c, k := selfSigned(t, "origin.test")
	u := newUpstream(t, c, k)
	conf := newClient(t, ClientOptions{InsecureSkipVerify: true, ServerName: "origin.test", ALPN: []string{"http/1.1"}})
	st, err := handshake(t, u.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("negotiated %q", st.NegotiatedProtocol)
	}
	st, err = handshake(t, u.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	if !st.DidResume {
		t.Error("second upstream connection did not resume the session")
	}
}

func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "x.test")
	p := writePair(t, dir, "p", c, k)
	junk := writeFile(t, dir, "junk", []byte("nothing"))
	for _, tc := range []struct {
		o    ClientOptions
		want string
	}{
		{ClientOptions{CAFile: junk}, junk + ": no certificate found in file"},
		{ClientOptions{CAFile: dir + "/none.pem"}, "none.pem: cannot read"},
		{ClientOptions{CertFile: p.CertFile}, "has no key file"},
		{ClientOptions{KeyFile: p.KeyFile}, "has no certificate file"},
		{ClientOptions{CertFile: p.CertFile, KeyFile: junk}, junk + ": no private key found"},
		{ClientOptions{MinVersion: "1.0"}, "before 1.2"},
	} {
		if _, err := NewClient(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.o, err, tc.want)
		}
	}
	conf := newClient(t, ClientOptions{MinVersion: "1.3"})
	if conf.MinVersion != tls.VersionTLS13 || conf.InsecureSkipVerify {
		t.Errorf("min 1.3 config: %+v", conf)
	}
}

func TestClientKey(t *testing.T) {
	base := ClientOptions{
		CAFile:     "/etc/weir/ca.pem",
		ServerName: "origin.test",
		CertFile:   "/etc/weir/c.pem",
		KeyFile:    "/etc/weir/c.key",
		ALPN:       []string{"h2", "http/1.1"},
		MinVersion: "1.2",
	}
	k0 := base.Key()
	if k0 != base.Key() {
		t.Fatal("Key is not stable")
	}
	same := base
	same.CAFile = "/etc/weir/./ca.pem"
	same.MinVersion = ""
	same.ALPN = []string{"h2", "http/1.1"}
	if same.Key() != k0 {
		t.Errorf("equivalent options differ:\n%s\n%s", same.Key(), k0)
	}
	variants := map[string]func(*ClientOptions){
		"ca":       func(o *ClientOptions) { o.CAFile = "/etc/weir/other.pem" },
		"no ca":    func(o *ClientOptions) { o.CAFile = "" },
		"sni":      func(o *ClientOptions) { o.ServerName = "other.test" },
		"no sni":   func(o *ClientOptions) { o.ServerName = "" },
		"insecure": func(o *ClientOptions) { o.InsecureSkipVerify = true },
		"cert":     func(o *ClientOptions) { o.CertFile = "/etc/weir/d.pem" },
		"key":      func(o *ClientOptions) { o.KeyFile = "/etc/weir/d.key" },
		"alpn":     func(o *ClientOptions) { o.ALPN = []string{"http/1.1"} },
		"alpn ord": func(o *ClientOptions) { o.ALPN = []string{"http/1.1", "h2"} },
		"no alpn":  func(o *ClientOptions) { o.ALPN = nil },
		"alpn mix": func(o *ClientOptions) { o.ALPN = []string{`h2","http/1.1`} },
		"min":      func(o *ClientOptions) { o.MinVersion = "1.3" },
		// A value that spells another field must not collide.
		"sni spoof": func(o *ClientOptions) { o.ServerName = `origin.test" verify=true` },
	}
	seen := map[string]string{k0: "base"}
	for name, change := range variants {
		o := base
		o.ALPN = append([]string(nil), base.ALPN...)
		change(&o)
		k := o.Key()
		if prev, dup := seen[k]; dup {
			t.Errorf("%s has the same key as %s: %s", name, prev, k)
		}
		seen[k] = name
	}
}

func TestSelfSigned(t *testing.T) {
	c, k := selfSigned(t)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != "localhost" {
		t.Errorf("no names: DNS names %v, want [localhost]", got)
	}
	c, k = selfSigned(t, "a.test", "127.0.0.1", "::1", "*.b.test")
	cert, err = tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if l := cert.Leaf; len(l.IPAddresses) != 2 || strings.Join(l.DNSNames, ",") != "a.test,*.b.test" || l.Subject.CommonName != "a.test" {
		t.Errorf("names: DNS %v IP %v CN %q", l.DNSNames, l.IPAddresses, l.Subject.CommonName)
	}
	if err := cert.Leaf.VerifyHostname("x.b.test"); err != nil {
		t.Errorf("wildcard name: %v", err)
	}
}
