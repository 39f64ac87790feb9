package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weirproxy/weir/limits"
	"go.yaml.in/yaml/v3"
)

// Valid values of the TLS settings, the default first.
var (
	clientAuthModes = []string{"none", "request", "require", "verify_if_given", "require_and_verify"}
	tlsVersions     = []string{"1.2", "1.3"}
	alpnProtocols   = []string{"h2", "http/1.1"}
	peerSchemes     = []string{"http", "https", "h2c", "h2"}
)

// maxPEMFile bounds the certificate, key and CA files Parse reads.
const maxPEMFile = 4 << 20

// listenerProtocols holds what the tls, http2 and http3 sections of one
// listener wrote, for the checks that involve more than one of them.
type listenerProtocols struct {
	tls       entry // tls.k is nil when the key is absent
	alpn      *yaml.Node
	alpnSet   bool
	enabledAt *yaml.Node // http2.enabled, when written
	enabled   bool
	h2cAt     *yaml.Node
	h2Limits  []entry // the http2 limit keys written
	h3At      *yaml.Node
}

// defaultHTTP2 returns the HTTP/2 settings of a listener before its http2
// section is read; MaxHeaderListSize stays 0 until the limits are known.
func defaultHTTP2() HTTP2 {
	return HTTP2{
		MaxConcurrentStreams: limits.H2MaxConcurrentStreams,
		StreamWindow:         limits.H2StreamWindow,
		ConnectionWindow:     limits.H2ConnWindow,
		MaxFrameSize:         limits.H2MaxFrameSize,
		GlitchBudget:         limits.H2GlitchBudget,
		GlitchRate:           limits.H2GlitchRate,
	}
}

// forwardTLSExcluded are the keys of a listener's tls section that a
// forward proxy's does not take: its port also serves cleartext HTTP and
// SOCKS5, so client certificates would restrict nothing, and it neither
// fingerprints clients nor obtains certificates over ACME.
var forwardTLSExcluded = []string{"client_auth", "client_ca", "fingerprint", "acme"}

// listenerTLS decodes a listener's tls section, or with forward set, a
// forward proxy's, which takes fewer keys.
func (d *decoder) listenerTLS(e entry, p *listenerProtocols, forward bool) *ListenerTLS {
	t := &ListenerTLS{ClientAuth: clientAuthModes[0], MinVersion: tlsVersions[0], ReloadInterval: DefaultCertReloadInterval}
	p.tls = e
	var certsAt, defaultAt, authAt, caAt *yaml.Node
	keys := fields{
		"certificates": func(e entry) {
			certsAt = e.k
			items, _ := d.list(e.v, "tls.certificates")
			for _, item := range items {
				if c, ok := d.certificate(item); ok {
					t.Certificates = append(t.Certificates, c)
				}
			}
			if emptyList(e.v) {
				d.errorf(e.k, "tls.certificates is empty: list at least one pair, like certificates: [{cert: cert.pem, key: key.pem}]")
			}
		},
		"default_certificate": func(e entry) {
			if d.intField(e.v, "tls.default_certificate", 0, math.MaxInt, &t.DefaultCertificate) {
				defaultAt = e.v
			}
		},
		"client_auth": func(e entry) {
			if d.enum(e.v, "tls.client_auth", clientAuthModes, &t.ClientAuth) {
				authAt = e.v
			}
		},
		"client_ca": func(e entry) {
			if path, _, ok := d.pemFile(e.v, "tls.client_ca", "CERTIFICATE"); ok {
				t.ClientCA, caAt = path, e.v
			}
		},
		"min_version": func(e entry) { d.tlsVersion(e.v, "tls.min_version", &t.MinVersion) },
		"alpn": func(e entry) {
			p.alpn, p.alpnSet = e.v, true
			t.ALPN = d.alpn(e.v)
		},
		"reload_interval": func(e entry) {
			d.duration(e.v, "tls.reload_interval", true, &t.ReloadInterval)
		},
		"fingerprint": func(e entry) { d.boolean(e.v, "tls.fingerprint", &t.Fingerprint) },
		"acme":        func(e entry) { t.ACME = d.acme(e) },
	}
	what := "in tls"
	if forward {
		for _, k := range forwardTLSExcluded {
			delete(keys, k)
		}
		what = "in forward proxy tls"
	}
	f := d.mapping(e.v, "tls", what, keys)
	if e.v.Kind != yaml.MappingNode && !isNull(e.v) {
		return t
	}
	_, hasCerts := f["certificates"]
	acme, hasACME := f["acme"]
	switch {
	case hasCerts && hasACME:
		d.errorf(acme.k, "tls.acme and tls.certificates exclude each other: serve certificates from files, or obtain them over ACME")
	case !hasCerts && forward:
		d.errorf(e.k, "tls needs certificates, like certificates: [{cert: cert.pem, key: key.pem}]")
	case !hasCerts && !hasACME:
		d.errorf(e.k, "tls needs certificates, like certificates: [{cert: cert.pem, key: key.pem}], or acme")
	case hasACME:
		for _, key := range []string{"default_certificate", "client_auth", "client_ca", "reload_interval"} {
			if x, ok := f[key]; ok {
				d.errorf(x.k, "tls.%s applies to certificates from files, not to certificates obtained over acme", key)
			}
		}
	}
	if defaultAt != nil && certsAt != nil && len(t.Certificates) > 0 && t.DefaultCertificate >= len(t.Certificates) {
		pairs := "1 pair"
		if len(t.Certificates) > 1 {
			pairs = fmt.Sprintf("%d pairs", len(t.Certificates))
		}
		d.errorf(defaultAt, "tls.default_certificate %d is out of range: tls.certificates lists %s, numbered from 0", t.DefaultCertificate, pairs)
	}
	verifying := t.ClientAuth == "verify_if_given" || t.ClientAuth == "require_and_verify"
	switch {
	case t.ClientCA != "" && authAt == nil:
		t.ClientAuth = "require_and_verify"
	case t.ClientCA != "" && !verifying:
		d.errorf(caAt, "tls.client_ca is only used by client_auth verify_if_given and require_and_verify, and this one is %s", t.ClientAuth)
	case verifying && t.ClientCA == "" && f["client_ca"].k == nil:
		d.errorf(authAt, "tls.client_auth %s needs tls.client_ca: the CA file client certificates must chain to", t.ClientAuth)
	}
	return t
}

// certificate decodes one item of tls.certificates.
func (d *decoder) certificate(n *yaml.Node) (Certificate, bool) {
	var c Certificate
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "expected a mapping {cert, key} in tls.certificates, got %s", describe(n))
		return c, false
	}
	var certPEM []byte
	var keyAt *yaml.Node
	ok := true
	f := d.mapping(n, "certificate", "in tls.certificates", fields{
		"cert": func(e entry) {
			path, data, good := d.pemFile(e.v, "tls certificate", "CERTIFICATE")
			c.Cert, certPEM, ok = path, data, ok && good
		},
		"key": func(e entry) {
			path, good := d.filePath(e.v, "tls key")
			c.Key, keyAt, ok = path, e.v, ok && good
		},
		"names": func(e entry) {
			values, nodes := d.strList(e.v, "tls.certificates names")
			for i, name := range values {
				norm, msg := checkServerName(name)
				if msg != "" {
					d.errorf(nodes[i], "invalid server name %q in names: %s", clip(name), msg)
					ok = false
				} else if !slices.Contains(c.Names, norm) {
					c.Names = append(c.Names, norm)
				}
			}
		},
	})
	for _, key := range []string{"cert", "key"} {
		if _, found := f[key]; !found {
			d.errorf(n, "certificate needs %s, like {cert: cert.pem, key: key.pem}", key)
			ok = false
		}
	}
	if keyAt != nil && c.Key != "" {
		keyPEM, good := d.readFile(keyAt, "tls key", c.Key)
		ok = ok && good
		if good && certPEM != nil {
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				d.errorf(keyAt, "tls key file %q cannot be used with certificate file %q: %s",
					clip(keyAt.Value), clip(filepath.Base(c.Cert)), strings.TrimPrefix(err.Error(), "tls: "))
				ok = false
			}
		}
	}
	return c, ok
}

// acme decodes a listener's tls.acme section.
func (d *decoder) acme(e entry) *ACME {
	a := &ACME{}
	f := d.mapping(e.v, "tls.acme", "in tls.acme", fields{
		"email": func(e entry) {
			if s, ok := d.str(e.v, "tls.acme.email"); ok {
				if s != "" && (!strings.Contains(s, "@") || strings.ContainsFunc(s, isSpaceOrControl)) {
					d.errorf(e.v, "invalid tls.acme.email %q: write an address like ops@example.com", clip(s))
					return
				}
				a.Email = s
			}
		},
		"ca": func(e entry) {
			s, ok := d.str(e.v, "tls.acme.ca")
			if !ok {
				return
			}
			if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
				d.errorf(e.v, "invalid tls.acme.ca %q: give the https:// URL of the CA's ACME directory", clip(s))
				return
			}
			a.CA = s
		},
		"domains": func(e entry) {
			values, nodes := d.strList(e.v, "tls.acme.domains")
			for i, name := range values {
				norm, msg := checkServerName(name)
				switch {
				case msg != "":
					d.errorf(nodes[i], "invalid domain %q in tls.acme.domains: %s", clip(name), msg)
				case strings.HasPrefix(norm, "*."):
					d.errorf(nodes[i], "tls.acme.domains cannot hold the wildcard %q: wildcard certificates need the DNS-01 challenge, which Weir does not solve", clip(name))
				case !slices.Contains(a.Domains, norm):
					a.Domains = append(a.Domains, norm)
				}
			}
		},
		"storage": func(e entry) {
			if path, ok := d.filePath(e.v, "tls.acme.storage"); ok {
				a.Storage = path
			}
		},
		"ca_root": func(e entry) {
			if path, _, ok := d.pemFile(e.v, "tls.acme.ca_root", "CERTIFICATE"); ok {
				a.CARoot = path
			}
		},
		"agree": func(e entry) { d.boolean(e.v, "tls.acme.agree", &a.Agree) },
	})
	if e.v.Kind != yaml.MappingNode && !isNull(e.v) {
		return a
	}
	if x, ok := f["domains"]; !ok || emptyList(x.v) {
		d.errorf(e.k, "tls.acme needs domains: the names to obtain certificates for, like domains: [example.com]")
	}
	if _, ok := f["storage"]; !ok {
		d.errorf(e.k, "tls.acme needs storage: a directory where certificates and keys are kept between runs")
	}
	if x, ok := f["agree"]; !ok {
		d.errorf(e.k, "tls.acme needs agree: true, which accepts the CA's subscriber agreement")
	} else if !a.Agree && x.v.Tag == "!!bool" {
		d.errorf(x.v, "tls.acme.agree must be true: the CA issues certificates only to those who accept its subscriber agreement")
	}
	return a
}

// alpn decodes tls.alpn: one protocol or a list of distinct ones.
func (d *decoder) alpn(n *yaml.Node) []string {
	values, nodes := d.strList(n, "tls.alpn")
	out := []string{}
	for i := range values {
		var proto string
		if !d.enum(nodes[i], "tls.alpn protocol", alpnProtocols, &proto) {
			continue
		}
		if slices.Contains(out, proto) {
			d.errorf(nodes[i], "tls.alpn lists %q twice", proto)
			continue
		}
		out = append(out, proto)
	}
	if len(values) == 0 && (isNull(n) || n.Kind == yaml.SequenceNode) {
		d.errorf(n, "tls.alpn is empty: offer h2, http/1.1 or both")
	}
	return out
}

// tlsVersion stores a minimum TLS version, "1.2" or "1.3". The value may
// be written as a number (1.2) or a string ("1.2").
func (d *decoder) tlsVersion(n *yaml.Node, name string, dst *string) {
	if !d.scalar(n, name, "a TLS version") {
		return
	}
	v := strings.TrimSpace(n.Value)
	if !slices.Contains(tlsVersions, v) {
		msg := ": use \"1.2\" or \"1.3\""
		if v == "1.0" || v == "1.1" || v == "1" {
			msg = ": TLS versions before 1.2 are not supported"
		}
		d.errorf(n, "unknown %s %q%s", name, clip(n.Value), msg)
		return
	}
	*dst = v
}

// http2 decodes a listener's http2 section.
func (d *decoder) http2(e entry, h *HTTP2, p *listenerProtocols) {
	limit := func(e entry) { p.h2Limits = append(p.h2Limits, e) }
	d.mapping(e.v, "http2", "in http2", fields{
		"enabled": func(e entry) {
			if d.boolean(e.v, "http2.enabled", &p.enabled) {
				p.enabledAt = e.v
			}
		},
		"h2c": func(e entry) {
			if d.boolean(e.v, "http2.h2c", &h.H2C) && h.H2C {
				p.h2cAt = e.v
			}
		},
		"max_concurrent_streams": func(e entry) {
			limit(e)
			d.intField(e.v, "http2.max_concurrent_streams", 1, math.MaxUint32, &h.MaxConcurrentStreams)
		},
		"max_header_list_size": func(e entry) {
			limit(e)
			d.sizeRange(e.v, "http2.max_header_list_size", 1, math.MaxInt32, &h.MaxHeaderListSize)
		},
		"stream_window": func(e entry) {
			limit(e)
			d.sizeRange(e.v, "http2.stream_window", 65535, math.MaxInt32, &h.StreamWindow)
		},
		"connection_window": func(e entry) {
			limit(e)
			d.sizeRange(e.v, "http2.connection_window", 65535, math.MaxInt32, &h.ConnectionWindow)
		},
		"max_frame_size": func(e entry) {
			limit(e)
			d.sizeRange(e.v, "http2.max_frame_size", 16384, 1<<24-1, &h.MaxFrameSize)
		},
		"glitch_budget": func(e entry) {
			limit(e)
			d.intField(e.v, "http2.glitch_budget", 1, math.MaxInt32, &h.GlitchBudget)
		},
		"glitch_rate": func(e entry) {
			limit(e)
			d.intField(e.v, "http2.glitch_rate", 1, math.MaxInt32, &h.GlitchRate)
		},
	})
}

// http3 decodes a listener's http3 section.
func (d *decoder) http3(e entry, h *HTTP3, p *listenerProtocols) {
	d.mapping(e.v, "http3", "in http3", fields{
		"enabled": func(e entry) {
			if d.boolean(e.v, "http3.enabled", &h.Enabled) && h.Enabled {
				p.h3At = e.v
			}
		},
	})
}

// checkProtocols completes the protocol settings of listener l and
// checks them against each other.
func (d *decoder) checkProtocols(l *Listener, p *listenerProtocols) {
	h := &l.HTTP2
	t := l.TLS
	enabledOff := p.enabledAt != nil && !p.enabled
	if t != nil {
		if p.h2cAt != nil {
			d.errorf(p.h2cAt, "http2.h2c is for cleartext listeners: over TLS, clients choose HTTP/2 through ALPN")
		}
		switch {
		case !p.alpnSet && enabledOff:
			t.ALPN = []string{"http/1.1"}
		case !p.alpnSet:
			t.ALPN = []string{"h2", "http/1.1"}
		case enabledOff && slices.Contains(t.ALPN, "h2"):
			d.errorf(p.alpn, "tls.alpn offers \"h2\", but http2.enabled is false")
		case p.enabledAt != nil && p.enabled && len(t.ALPN) > 0 && !slices.Contains(t.ALPN, "h2"):
			d.errorf(p.enabledAt, "http2.enabled is true, but tls.alpn does not offer \"h2\", which is how TLS clients choose HTTP/2")
		}
		h.Enabled = slices.Contains(t.ALPN, "h2")
	} else {
		if p.h3At != nil {
			d.errorf(p.h3At, "http3 needs tls: QUIC is always encrypted; add a tls section to listener %q", clip(l.Name))
		}
		switch {
		case p.h2cAt != nil && enabledOff:
			d.errorf(p.h2cAt, "http2.h2c is true, but http2.enabled is false")
		case p.enabledAt != nil && p.enabled && p.h2cAt == nil:
			d.errorf(p.enabledAt, "http2.enabled has no effect on a cleartext listener: clients choose HTTP/2 through TLS; add tls, or set h2c: true to accept cleartext HTTP/2 with prior knowledge")
		case p.h2cAt == nil:
			for _, x := range p.h2Limits {
				d.errorf(x.k, "http2.%s has no effect: listener %q speaks only HTTP/1.1; add tls, or set h2c: true", x.key, clip(l.Name))
			}
		}
		h.Enabled = h.H2C && !enabledOff
	}
}

// upstreamTLS decodes an upstream's tls section.
func (d *decoder) upstreamTLS(e entry) *UpstreamTLS {
	t := &UpstreamTLS{MinVersion: tlsVersions[0]}
	var certAt, keyAt, insecureAt *yaml.Node
	d.mapping(e.v, "tls", "in upstream tls", fields{
		"ca": func(e entry) {
			if path, _, ok := d.pemFile(e.v, "tls.ca", "CERTIFICATE"); ok {
				t.CA = path
			}
		},
		"server_name": func(e entry) {
			s, ok := d.str(e.v, "tls.server_name")
			if !ok {
				return
			}
			if msg := checkHost(s); msg != "" {
				d.errorf(e.v, "invalid tls.server_name %q: %s", clip(s), msg)
				return
			}
			t.ServerName = strings.ToLower(strings.TrimSuffix(s, "."))
		},
		"insecure_skip_verify": func(e entry) {
			if d.boolean(e.v, "tls.insecure_skip_verify", &t.InsecureSkipVerify) && t.InsecureSkipVerify {
				insecureAt = e.v
			}
		},
		"cert": func(e entry) {
			certAt = e.k
			if path, _, ok := d.pemFile(e.v, "tls.cert", "CERTIFICATE"); ok {
				t.Cert = path
			}
		},
		"key": func(e entry) {
			keyAt = e.k
			if path, ok := d.filePath(e.v, "tls.key"); ok {
				if _, ok := d.readFile(e.v, "tls.key", path); ok {
					t.Key = path
				}
			}
		},
		"min_version": func(e entry) { d.tlsVersion(e.v, "tls.min_version", &t.MinVersion) },
	})
	switch {
	case certAt != nil && keyAt == nil:
		d.errorf(certAt, "tls.cert needs tls.key: the client certificate's private key")
	case keyAt != nil && certAt == nil:
		d.errorf(keyAt, "tls.key needs tls.cert: the client certificate it belongs to")
	case t.Cert != "" && t.Key != "":
		cert, _ := readLimited(t.Cert)
		key, _ := readLimited(t.Key)
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			d.errorf(keyAt, "tls.key cannot be used with tls.cert: %s", strings.TrimPrefix(err.Error(), "tls: "))
		}
	}
	if insecureAt != nil && t.CA != "" {
		d.errorf(insecureAt, "tls.insecure_skip_verify turns off the verification tls.ca is for; remove one of them")
	}
	return t
}

// filePath returns the path written at n, resolved against the directory
// of the configuration file.
func (d *decoder) filePath(n *yaml.Node, name string) (string, bool) {
	s, ok := d.str(n, name)
	if !ok {
		return "", false
	}
	if s == "" || strings.ContainsRune(s, 0) {
		d.errorf(n, "invalid %s %q: give a file path", name, clip(s))
		return "", false
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s), true
	}
	return filepath.Join(d.dir, s), true
}

// pemFile resolves the path at n, reads the file and checks that it
// holds at least one PEM block of type kind that parses.
func (d *decoder) pemFile(n *yaml.Node, name, kind string) (string, []byte, bool) {
	path, ok := d.filePath(n, name)
	if !ok {
		return "", nil, false
	}
	data, ok := d.readFile(n, name, path)
	if !ok {
		return "", nil, false
	}
	found := false
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != kind {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			d.errorf(n, "%s file %q holds a certificate that cannot be parsed: %s", name, clip(n.Value), strings.TrimPrefix(err.Error(), "x509: "))
			return "", nil, false
		}
		found = true
	}
	if !found {
		d.errorf(n, "%s file %q holds no PEM certificate (-----BEGIN CERTIFICATE-----)", name, clip(n.Value))
		return "", nil, false
	}
	return path, data, true
}

// readFile reads the file at path, written at n.
func (d *decoder) readFile(n *yaml.Node, name, path string) ([]byte, bool) {
	data, err := readLimited(path)
	if err != nil {
		where := ""
		if filepath.Clean(n.Value) != path {
			where = fmt.Sprintf(" (%s)", clip(path))
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		d.errorf(n, "cannot read %s file %q%s: %v", name, clip(n.Value), where, err)
		return nil, false
	}
	return data, true
}

// readLimited reads a regular file of at most maxPEMFile bytes.
func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case st.IsDir():
		return nil, errors.New("it is a directory")
	case !st.Mode().IsRegular():
		return nil, errors.New("it is not a regular file")
	case st.Size() > maxPEMFile:
		return nil, fmt.Errorf("it is larger than %d MiB", maxPEMFile>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPEMFile))
}

// sizeRange stores a size from lo to hi into *dst.
func (d *decoder) sizeRange(n *yaml.Node, name string, lo, hi int64, dst *int) bool {
	v, ok := d.size(n, name, lo)
	if !ok {
		return false
	}
	if v > hi {
		return d.outOfRange(n, name, lo, hi)
	}
	*dst = int(v)
	return true
}

// checkServerName checks a TLS server name, a host name or a wildcard
// one label deep, and returns it in lower case without a final dot.
func checkServerName(s string) (string, string) {
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	rest, wild := strings.CutPrefix(h, "*.")
	if strings.Contains(rest, "*") {
		return "", "a wildcard may only be the whole first label, like *.example.com"
	}
	if strings.Contains(rest, ":") {
		return "", "server names have no port"
	}
	if msg := checkHostname(rest); msg != "" {
		return "", msg
	}
	if wild {
		return "*." + rest, ""
	}
	return rest, ""
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
