package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/tlsconf"
)

// tlsDir writes certificate files into a temporary directory and returns
// it: a.pem/a-key.pem and b.pem/b-key.pem (two self-signed pairs), and
// junk.pem, which holds no PEM.
func tlsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		cert, key, err := tlsconf.SelfSigned(name + ".example.com")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name+".pem"), cert)
		writeFile(t, filepath.Join(dir, name+"-key.pem"), key)
	}
	writeFile(t, filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"))
	return dir
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// parseIn parses src as the file f.yaml in dir, so that relative paths
// resolve against dir.
func parseIn(t *testing.T, dir, src string) (*Config, error) {
	t.Helper()
	return Parse(filepath.Join(dir, "f.yaml"), []byte(src))
}

func TestDefaultsMatchTLSConf(t *testing.T) {
	if DefaultCertReloadInterval != tlsconf.DefaultReloadInterval {
		t.Errorf("DefaultCertReloadInterval = %v, tlsconf.DefaultReloadInterval = %v", DefaultCertReloadInterval, tlsconf.DefaultReloadInterval)
	}
	if tlsVersions[0] != tlsconf.DefaultMinVersion {
		t.Errorf("default min_version %q, tlsconf.DefaultMinVersion %q", tlsVersions[0], tlsconf.DefaultMinVersion)
	}
	if !slices.Equal(alpnProtocols, tlsconf.DefaultALPN()) {
		t.Errorf("default alpn %q, tlsconf.DefaultALPN() %q", alpnProtocols, tlsconf.DefaultALPN())
	}
	if !slices.Equal(clientAuthModes, []string{tlsconf.ClientAuthNone, tlsconf.ClientAuthRequest, tlsconf.ClientAuthRequire,
		tlsconf.ClientAuthVerifyIfGiven, tlsconf.ClientAuthRequireAndVerify}) {
		t.Errorf("client_auth modes %q differ from tlsconf's", clientAuthModes)
	}
}

func TestTLSListener(t *testing.T) {
	dir := tlsDir(t)
	cfg, err := parseIn(t, dir, `
listeners:
  - name: web
    address: ":8443"
    tls:
      certificates:
        - {cert: a.pem, key: a-key.pem, names: [A.Example.com., "*.example.org"]}
        - cert: `+filepath.Join(dir, "b.pem")+`
          key: b-key.pem
      default_certificate: 1
      client_auth: verify_if_given
      client_ca: a.pem
      min_version: 1.3
      alpn: http/1.1
      reload_interval: 0
      fingerprint: true
    http2:
      max_concurrent_streams: 50
      stream_window: 256KiB
      connection_window: 1MiB
      max_frame_size: 32KiB
      glitch_budget: 10
      glitch_rate: 1
    http3: {enabled: true}
limits: {max_header_bytes: 32KiB}
`)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	want := &ListenerTLS{
		Certificates: []Certificate{
			{Cert: filepath.Join(dir, "a.pem"), Key: filepath.Join(dir, "a-key.pem"), Names: []string{"a.example.com", "*.example.org"}},
			{Cert: filepath.Join(dir, "b.pem"), Key: filepath.Join(dir, "b-key.pem")},
		},
		DefaultCertificate: 1,
		ClientAuth:         "verify_if_given",
		ClientCA:           filepath.Join(dir, "a.pem"),
		MinVersion:         "1.3",
		ALPN:               []string{"http/1.1"},
		ReloadInterval:     0,
		Fingerprint:        true,
	}
	if !reflect.DeepEqual(l.TLS, want) {
		t.Errorf("TLS =\n%+v\nwant\n%+v", l.TLS, want)
	}
	wantH2 := HTTP2{Enabled: false, MaxConcurrentStreams: 50, MaxHeaderListSize: 32 << 10, StreamWindow: 256 << 10,
		ConnectionWindow: 1 << 20, MaxFrameSize: 32 << 10, GlitchBudget: 10, GlitchRate: 1}
	if l.HTTP2 != wantH2 {
		t.Errorf("HTTP2 = %+v, want %+v", l.HTTP2, wantH2)
	}
	if !l.HTTP3.Enabled {
		t.Error("HTTP3.Enabled = false")
	}
}

func TestTLSListenerDefaults(t *testing.T) {
	dir := tlsDir(t)
	cfg, err := parseIn(t, dir, `
listeners:
  - address: ":443"
    tls:
      certificates: [{cert: a.pem, key: a-key.pem}]
  - address: ":8443"
    tls:
      certificates: [{cert: a.pem, key: a-key.pem}]
      client_ca: b.pem
    http2: {enabled: false}
  - address: ":8080"
    http2: {h2c: true, max_concurrent_streams: 10}
  - address: ":8081"
`)
	if err != nil {
		t.Fatal(err)
	}
	ls := cfg.Listeners
	if got := ls[0].TLS; got.ClientAuth != "none" || got.MinVersion != "1.2" || got.ReloadInterval != 5*time.Second ||
		!slices.Equal(got.ALPN, []string{"h2", "http/1.1"}) || got.Fingerprint || got.DefaultCertificate != 0 || got.ACME != nil {
		t.Errorf("defaults: %+v", got)
	}
	if !ls[0].HTTP2.Enabled || ls[0].HTTP2.H2C || ls[0].HTTP3.Enabled {
		t.Errorf("TLS listener: HTTP2 %+v, HTTP3 %+v", ls[0].HTTP2, ls[0].HTTP3)
	}
	if ls[0].HTTP2.MaxHeaderListSize != limits.MaxHeaderBytes || ls[0].HTTP2.MaxFrameSize != limits.H2MaxFrameSize {
		t.Errorf("HTTP2 limits %+v", ls[0].HTTP2)
	}
	if got := ls[1]; got.HTTP2.Enabled || !slices.Equal(got.TLS.ALPN, []string{"http/1.1"}) || got.TLS.ClientAuth != "require_and_verify" {
		t.Errorf("http2 disabled, client_ca: HTTP2 %+v, TLS %+v", got.HTTP2, got.TLS)
	}
	if got := ls[2].HTTP2; !got.Enabled || !got.H2C || got.MaxConcurrentStreams != 10 {
		t.Errorf("h2c listener: %+v", got)
	}
	if got := ls[3]; got.TLS != nil || got.HTTP2.Enabled || got.HTTP2.H2C {
		t.Errorf("cleartext listener: %+v", got)
	}
}

func TestACME(t *testing.T) {
	dir := tlsDir(t)
	cfg, err := parseIn(t, dir, `
listeners:
  - address: ":443"
    tls:
      acme:
        email: ops@example.com
        ca: https://acme-staging-v02.api.letsencrypt.org/directory
        domains: [Example.com, www.example.com, example.com]
        storage: acme
        ca_root: a.pem
        agree: true
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &ACME{Email: "ops@example.com", CA: "https://acme-staging-v02.api.letsencrypt.org/directory",
		Domains: []string{"example.com", "www.example.com"}, Storage: filepath.Join(dir, "acme"),
		CARoot: filepath.Join(dir, "a.pem"), Agree: true}
	if got := cfg.Listeners[0].TLS.ACME; !reflect.DeepEqual(got, want) {
		t.Errorf("ACME = %+v, want %+v", got, want)
	}
	if len(cfg.Listeners[0].TLS.Certificates) != 0 {
		t.Errorf("Certificates = %v", cfg.Listeners[0].TLS.Certificates)
	}
}

// TestLoadResolvesPaths: Load takes relative paths from the directory of
// the file, wherever Weir was started.
func TestLoadResolvesPaths(t *testing.T) {
	dir := tlsDir(t)
	file := filepath.Join(dir, "weir.yaml")
	writeFile(t, file, []byte("listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n"))
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Listeners[0].TLS.Certificates[0].Cert; got != filepath.Join(dir, "a.pem") {
		t.Errorf("Cert = %q, want %q", got, filepath.Join(dir, "a.pem"))
	}
}

func TestUpstreamSchemes(t *testing.T) {
	dir := tlsDir(t)
	cfg, err := parseIn(t, dir, `
listeners: [{address: ":80"}]
routes:
  - {upstream: grpc, grpc_web: true}
upstreams:
  plain: {peers: [a:81, "http://b"]}
  secure:
    peers: [https://a.example.com, "HTTPS://10.0.0.1:8443"]
    tls:
      ca: a.pem
      server_name: A.Example.com
      cert: b.pem
      key: b-key.pem
      min_version: "1.3"
    health_check: {}
  grpc:
    peers: [h2c://g1:50051, h2c://g2]
    keepalive: {idle_timeout: 10s}
    health_check: {type: tcp}
  grpcs:
    peers: [h2://g1]
    tls: {insecure_skip_verify: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]Peer{
		"plain":  {{Address: "a:81", Scheme: "http", Weight: 1}, {Address: "b:80", Scheme: "http", Weight: 1}},
		"secure": {{Address: "a.example.com:443", Scheme: "https", Weight: 1}, {Address: "10.0.0.1:8443", Scheme: "https", Weight: 1}},
		"grpc":   {{Address: "g1:50051", Scheme: "h2c", Weight: 1}, {Address: "g2:80", Scheme: "h2c", Weight: 1}},
		"grpcs":  {{Address: "g1:443", Scheme: "h2", Weight: 1}},
	} {
		u := cfg.Upstreams[name]
		if !reflect.DeepEqual(u.Peers, want) || u.Scheme != want[0].Scheme {
			t.Errorf("%s: scheme %q, peers %+v, want %+v", name, u.Scheme, u.Peers, want)
		}
	}
	wantTLS := &UpstreamTLS{CA: filepath.Join(dir, "a.pem"), ServerName: "a.example.com",
		Cert: filepath.Join(dir, "b.pem"), Key: filepath.Join(dir, "b-key.pem"), MinVersion: "1.3"}
	if got := cfg.Upstreams["secure"].TLS; !reflect.DeepEqual(got, wantTLS) {
		t.Errorf("TLS = %+v, want %+v", got, wantTLS)
	}
	if got := cfg.Upstreams["secure"].HealthCheck.Type; got != "http" {
		t.Errorf("health check type of https peers = %q, want http (over TLS)", got)
	}
	if got := cfg.Upstreams["grpcs"].TLS; !got.InsecureSkipVerify || got.MinVersion != "1.2" {
		t.Errorf("grpcs TLS = %+v", got)
	}
	if cfg.Upstreams["plain"].TLS != nil {
		t.Error("plain upstream has TLS settings")
	}
	if !cfg.Routes[0].GRPCWeb {
		t.Error("GRPCWeb = false")
	}
}

// tlsErrorCases are like errorCases, for the TLS and HTTP/2 settings.
// DIR in a source or message stands for the directory of the test files
// (tlsDir), which is also the directory of f.yaml.
var tlsErrorCases = []struct {
	name string
	src  string
	want []string
}{
	// Files.
	{"file/missing", "listeners:\n  - address: \":443\"\n    tls:\n      certificates:\n        - {cert: nope.pem, key: a-key.pem}\n",
		[]string{`f.yaml:5:18: cannot read tls certificate file "nope.pem" (DIR/nope.pem): no such file or directory`}},
	{"file/missing key", "listeners:\n  - address: \":443\"\n    tls:\n      certificates:\n        - cert: a.pem\n          key: DIR/nope.pem\n",
		[]string{`f.yaml:6:16: cannot read tls key file "DIR/nope.pem": no such file or directory`}},
	{"file/directory", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: ., key: a-key.pem}]\n",
		[]string{`f.yaml:4:29: cannot read tls certificate file "." (DIR): it is a directory`}},
	{"file/not PEM", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: junk.pem, key: a-key.pem}]\n",
		[]string{`f.yaml:4:29: tls certificate file "junk.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`}},
	{"file/key does not match", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: b-key.pem}]\n",
		[]string{`f.yaml:4:41: tls key file "b-key.pem" cannot be used with certificate file "a.pem": private key does not match public key`}},
	{"file/key is a certificate", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a.pem}]\n",
		[]string{`f.yaml:4:41: tls key file "a.pem" cannot be used with certificate file "a.pem": found a certificate rather than a key in the PEM for the private key`}},
	{"file/client ca not PEM", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      client_ca: junk.pem\n",
		[]string{`f.yaml:5:18: tls.client_ca file "junk.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`}},
	{"file/empty path", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: \"\", key: a-key.pem}]\n",
		[]string{`f.yaml:4:29: invalid tls certificate "": give a file path`}},

	// The tls section.
	{"tls/no certificates", "listeners:\n  - address: \":443\"\n    tls: {min_version: \"1.3\"}\n",
		[]string{`f.yaml:3:5: tls needs certificates, like certificates: [{cert: cert.pem, key: key.pem}], or acme`}},
	{"tls/empty certificates", "listeners:\n  - address: \":443\"\n    tls: {certificates: []}\n",
		[]string{`f.yaml:3:11: tls.certificates is empty: list at least one pair, like certificates: [{cert: cert.pem, key: key.pem}]`}},
	{"tls/certificate without key", "listeners:\n  - address: \":443\"\n    tls: {certificates: [{cert: a.pem}]}\n",
		[]string{`f.yaml:3:26: certificate needs key, like {cert: cert.pem, key: key.pem}`}},
	{"tls/certificate as a string", "listeners:\n  - address: \":443\"\n    tls: {certificates: [a.pem]}\n",
		[]string{`f.yaml:3:26: expected a mapping {cert, key} in tls.certificates, got a string ("a.pem")`}},
	{"tls/unknown key", "listeners:\n  - address: \":443\"\n    tls: {certificates: [{cert: a.pem, key: a-key.pem}], min_versoin: \"1.3\"}\n",
		[]string{`f.yaml:3:58: unknown key "min_versoin" in tls; did you mean "min_version"?`}},
	{"tls/both", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      acme: {domains: [a.example], storage: s, agree: true}\n",
		[]string{`f.yaml:5:7: tls.acme and tls.certificates exclude each other: serve certificates from files, or obtain them over ACME`}},
	{"tls/default out of range", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      default_certificate: 1\n",
		[]string{`f.yaml:5:28: tls.default_certificate 1 is out of range: tls.certificates lists 1 pair, numbered from 0`}},
	{"tls/bad name", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem, names: [\"a.*.example\"]}]\n",
		[]string{`f.yaml:4:60: invalid server name "a.*.example" in names: a wildcard may only be the whole first label, like *.example.com`}},
	{"tls/verify without CA", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      client_auth: require_and_verify\n",
		[]string{`f.yaml:5:20: tls.client_auth require_and_verify needs tls.client_ca: the CA file client certificates must chain to`}},
	{"tls/CA without verify", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      client_auth: request\n      client_ca: a.pem\n",
		[]string{`f.yaml:6:18: tls.client_ca is only used by client_auth verify_if_given and require_and_verify, and this one is request`}},
	{"tls/unknown client_auth", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      client_auth: requre\n",
		[]string{`f.yaml:5:20: unknown tls.client_auth "requre"; did you mean "require"?`}},
	{"tls/old version", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      min_version: 1.1\n",
		[]string{`f.yaml:5:20: unknown tls.min_version "1.1": TLS versions before 1.2 are not supported`}},
	{"tls/alpn", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      alpn: [h3, http/1.1, http/1.1]\n",
		[]string{
			`f.yaml:5:14: unknown tls.alpn protocol "h3"; did you mean "h2"?`,
			`f.yaml:5:28: tls.alpn lists "http/1.1" twice`,
		}},
	{"tls/empty alpn", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      alpn: []\n",
		[]string{`f.yaml:5:13: tls.alpn is empty: offer h2, http/1.1 or both`}},
	{"tls/negative reload", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      reload_interval: -1s\n",
		[]string{`f.yaml:5:24: tls.reload_interval must not be negative, got -1s`}},

	// ACME.
	{"acme/required keys", "listeners:\n  - address: \":443\"\n    tls:\n      acme: {email: ops@example.com}\n",
		[]string{
			`f.yaml:4:7: tls.acme needs domains: the names to obtain certificates for, like domains: [example.com]`,
			`f.yaml:4:7: tls.acme needs storage: a directory where certificates and keys are kept between runs`,
			`f.yaml:4:7: tls.acme needs agree: true, which accepts the CA's subscriber agreement`,
		}},
	{"acme/not agreed", "listeners:\n  - address: \":443\"\n    tls:\n      acme: {domains: [a.example], storage: s, agree: false}\n",
		[]string{`f.yaml:4:55: tls.acme.agree must be true: the CA issues certificates only to those who accept its subscriber agreement`}},
	{"acme/wildcard", "listeners:\n  - address: \":443\"\n    tls:\n      acme: {domains: [\"*.a.example\"], storage: s, agree: true}\n",
		[]string{`f.yaml:4:24: tls.acme.domains cannot hold the wildcard "*.a.example": wildcard certificates need the DNS-01 challenge, which Weir does not solve`}},
	{"acme/ca URL", "listeners:\n  - address: \":443\"\n    tls:\n      acme: {ca: http://ca.example/dir, domains: [a.example], storage: s, agree: true}\n",
		[]string{`f.yaml:4:18: invalid tls.acme.ca "http://ca.example/dir": give the https:// URL of the CA's ACME directory`}},
	{"acme/client auth", "listeners:\n  - address: \":443\"\n    tls:\n      acme: {domains: [a.example], storage: s, agree: true}\n      client_auth: require\n",
		[]string{`f.yaml:5:7: tls.client_auth applies to certificates from files, not to certificates obtained over acme`}},

	// http2 and http3.
	{"http2/alpn h2 while disabled", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      alpn: [h2]\n    http2: {enabled: false}\n",
		[]string{`f.yaml:5:13: tls.alpn offers "h2", but http2.enabled is false`}},
	{"http2/enabled without h2 in alpn", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n      alpn: http/1.1\n    http2: {enabled: true}\n",
		[]string{`f.yaml:6:22: http2.enabled is true, but tls.alpn does not offer "h2", which is how TLS clients choose HTTP/2`}},
	{"http2/h2c with tls", "listeners:\n  - address: \":443\"\n    tls:\n      certificates: [{cert: a.pem, key: a-key.pem}]\n    http2: {h2c: true}\n",
		[]string{`f.yaml:5:18: http2.h2c is for cleartext listeners: over TLS, clients choose HTTP/2 through ALPN`}},
	{"http2/enabled on cleartext", "listeners:\n  - address: \":80\"\n    http2: {enabled: true}\n",
		[]string{`f.yaml:3:22: http2.enabled has no effect on a cleartext listener: clients choose HTTP/2 through TLS; add tls, or set h2c: true to accept cleartext HTTP/2 with prior knowledge`}},
	{"http2/h2c while disabled", "listeners:\n  - address: \":80\"\n    http2: {enabled: false, h2c: true}\n",
		[]string{`f.yaml:3:34: http2.h2c is true, but http2.enabled is false`}},
	{"http2/limits on cleartext", "listeners:\n  - name: web\n    address: \":80\"\n    http2: {max_concurrent_streams: 10}\n",
		[]string{`f.yaml:4:13: http2.max_concurrent_streams has no effect: listener "web" speaks only HTTP/1.1; add tls, or set h2c: true`}},
	{"http2/ranges", "listeners:\n  - address: \":80\"\n    http2:\n      h2c: true\n      stream_window: 1KiB\n      max_frame_size: 16MiB\n      max_concurrent_streams: 0\n      glitch_rate: 0\n",
		[]string{
			`f.yaml:5:22: http2.stream_window must be at least 65535, got 1KiB`,
			`f.yaml:6:23: http2.max_frame_size must be from 16384 to 16777215, got 16MiB`,
			`f.yaml:7:31: http2.max_concurrent_streams must be from 1 to 4294967295, got 0`,
			`f.yaml:8:20: http2.glitch_rate must be from 1 to 2147483647, got 0`,
		}},
	{"http2/unknown key", "listeners:\n  - address: \":80\"\n    http2: {h2: true}\n",
		[]string{`f.yaml:3:13: unknown key "h2" in http2; did you mean "h2c"?`}},
	{"http3/without tls", "listeners:\n  - name: web\n    address: \":80\"\n    http3: {enabled: true}\n",
		[]string{`f.yaml:4:22: http3 needs tls: QUIC is always encrypted; add a tls section to listener "web"`}},

	// Upstreams.
	{"upstream/mixed schemes", listener + "upstreams:\n  app:\n    peers: [\"http://a:80\", \"h2c://b:80\", \"c:80\"]\n",
		[]string{`f.yaml:5:28: peer "h2c://b:80" in upstream "app" uses h2c://, but the first peer (line 5) uses http://; all peers of one upstream speak the same protocol`}},
	{"upstream/tls with cleartext peers", listener + "upstreams:\n  app:\n    peers: [\"h2c://a:80\"]\n    tls: {server_name: a.example}\n",
		[]string{`f.yaml:6:5: upstream "app" has tls settings, but its peers are cleartext h2c://; use h2:// peers for TLS`}},
	{"upstream/insecure with ca", listener + "upstreams:\n  app:\n    peers: [\"https://a\"]\n    tls: {ca: a.pem, insecure_skip_verify: true}\n",
		[]string{`f.yaml:6:44: tls.insecure_skip_verify turns off the verification tls.ca is for; remove one of them`}},
	{"upstream/cert without key", listener + "upstreams:\n  app:\n    peers: [\"https://a\"]\n    tls: {cert: a.pem}\n",
		[]string{`f.yaml:6:11: tls.cert needs tls.key: the client certificate's private key`}},
	{"upstream/client key mismatch", listener + "upstreams:\n  app:\n    peers: [\"h2://a\"]\n    tls: {cert: a.pem, key: b-key.pem}\n",
		[]string{`f.yaml:6:24: tls.key cannot be used with tls.cert: private key does not match public key`}},
	{"upstream/missing ca", listener + "upstreams:\n  app:\n    peers: [\"https://a\"]\n    tls: {ca: ca.pem}\n",
		[]string{`f.yaml:6:15: cannot read tls.ca file "ca.pem" (DIR/ca.pem): no such file or directory`}},
	{"upstream/bad server name", listener + "upstreams:\n  app:\n    peers: [\"https://a\"]\n    tls: {server_name: \"a b\"}\n",
		[]string{`f.yaml:6:24: invalid tls.server_name "a b": host names may only contain letters, digits, '-', '_' and '.', not " "`}},
	{"upstream/keepalive on h2", listener + "upstreams:\n  app:\n    peers: [\"h2://a\"]\n    keepalive: {max_idle: 4, idle_timeout: 5s}\n",
		[]string{`f.yaml:6:17: keepalive.max_idle applies to HTTP/1.1 peers; HTTP/2 peers (h2://) multiplex requests over few connections, so only keepalive.idle_timeout applies`}},
	{"route/grpc_web to HTTP/1.1", listener + backend + "routes:\n  - {name: web, upstream: app, grpc_web: true}\n",
		[]string{`f.yaml:7:42: route "web" translates gRPC-Web to gRPC, which needs HTTP/2 peers, but upstream "app" uses http://; use h2c:// or h2:// peers`}},
	{"route/grpc_web not a boolean", listener + backend + "routes:\n  - {upstream: app, grpc_web: yes}\n",
		[]string{`f.yaml:7:31: expected true or false for grpc_web, got a string ("yes")`}},
}

func TestTLSErrors(t *testing.T) {
	dir := tlsDir(t)
	for _, tc := range tlsErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.ReplaceAll(tc.src, "DIR", dir)
			cfg, err := parseIn(t, dir, src)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse: %v (config %v), want errors:\n%s", err, cfg != nil, strings.Join(tc.want, "\n"))
			}
			var got, want []string
			for _, e := range list {
				got = append(got, strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
			}
			for _, w := range tc.want {
				want = append(want, strings.ReplaceAll(w, "DIR", dir))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("source:\n%s\ngot:\n%s\nwant:\n%s", src, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// Health checks speak what the peers speak: http by default for
// https:// peers (over TLS), tcp by default for HTTP/2 peers, and http
// when asked for.
func TestHealthCheckTypeByScheme(t *testing.T) {
	cfg := mustParse(t, listener+`upstreams:
  secure: {peers: ["https://a:443"], health_check: {}}
  grpc: {peers: ["h2c://b:50051"], health_check: {}}
  h2web: {peers: ["h2://c:443"], health_check: {type: http, path: /healthz}}
routes:
  - {upstream: secure}
`)
	for name, want := range map[string]string{"secure": "http", "grpc": "tcp", "h2web": "http"} {
		if got := cfg.Upstreams[name].HealthCheck.Type; got != want {
			t.Errorf("%s: health check type %q, want %q", name, got, want)
		}
	}
}
