package tlsconf

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// ClientOptions configures TLS toward an upstream. The zero value verifies
// the upstream's certificate against the system roots, sends the peer's
// host as the server name, offers no ALPN and no client certificate.
type ClientOptions struct {
	// CAFile is a PEM file of the CA certificates the upstream's
	// certificate must chain to. Empty: the system roots.
	CAFile string

	// ServerName is the name sent as SNI and checked against the
	// upstream's certificate. Empty: the host of the address dialed (see
	// ForHost).
	ServerName string

	// InsecureSkipVerify turns certificate verification off. The
	// connection is then encrypted but not authenticated: anyone on the
	// path can pose as the upstream. Only for tests and trusted networks.
	InsecureSkipVerify bool

	// CertFile and KeyFile are a client certificate and its key, presented
	// to upstreams that ask for one (mutual TLS). Both or neither.
	CertFile, KeyFile string

	// ALPN lists the application protocols offered, most preferred first,
	// e.g. ALPNHTTP2, ALPNHTTP1. Empty: none offered.
	ALPN []string

	// MinVersion is "1.2" (DefaultMinVersion, when empty) or "1.3".
	MinVersion string
}

// NewClient returns the TLS configuration for connections to an upstream.
// It reads the CA file and the client certificate once; errors name the
// file and what is wrong with it. The configuration carries a session
// cache of DefaultClientSessionCacheSize entries, so reconnections resume
// sessions. Use the same configuration for every connection with the same
// Key, and do not modify it; with an empty ServerName, pass it through
// ForHost for each upstream host.
func NewClient(opts ClientOptions) (*tls.Config, error) {
	minV, err := parseMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		MinVersion:         minV,
		CurvePreferences:   CurvePreferences(),
		ServerName:         opts.ServerName,
		InsecureSkipVerify: opts.InsecureSkipVerify,
		ClientSessionCache: tls.NewLRUClientSessionCache(DefaultClientSessionCacheSize),
	}
	if len(opts.ALPN) > 0 {
		conf.NextProtos = append([]string(nil), opts.ALPN...)
	}
	if opts.CAFile != "" {
		pool, _, err := loadCAPool(opts.CAFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	switch {
	case opts.CertFile != "" && opts.KeyFile != "":
		certPEM, err := readFile(opts.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readFile(opts.KeyFile)
		if err != nil {
			return nil, err
		}
		c, err := parseKeyPair(opts.CertFile, opts.KeyFile, certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{*c}
	case opts.CertFile != "":
		return nil, errorf("%s: client certificate has no key file", opts.CertFile)
	case opts.KeyFile != "":
		return nil, errorf("%s: client key has no certificate file", opts.KeyFile)
	}
	return conf, nil
}

// ForHost returns conf ready to dial addr (a "host:port" or a bare host):
// conf itself when it names a server already, else a copy whose ServerName
// is the host of addr. Dialing an IP address sends
// no SNI and verifies the address against the certificate's IP names.
// Callers that dial the same host often should keep the result.
func ForHost(conf *tls.Config, addr string) *tls.Config {
	if conf.ServerName != "" {
		return conf
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "" {
		return conf
	}
	c := conf.Clone()
	c.ServerName = host
	return c
}

// Key returns a string that is equal for two ClientOptions exactly when
// connections made with them are interchangeable: the CA file, server
// name, verification flag, client certificate and key files, ALPN list and
// minimum version all take part. A connection pool keys idle upstream
// connections on the address plus Key, so a connection opened for one
// setting is never reused for another. Files are compared by their cleaned
// paths; a file changed in place keeps its key.
func (o ClientOptions) Key() string {
	var b strings.Builder
	field := func(name, v string) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
		b.WriteByte(' ')
	}
	field("ca", cleanPath(o.CAFile))
	field("sni", o.ServerName)
	b.WriteString("verify=")
	b.WriteString(strconv.FormatBool(!o.InsecureSkipVerify))
	b.WriteByte(' ')
	field("cert", cleanPath(o.CertFile))
	field("key", cleanPath(o.KeyFile))
	b.WriteString("alpn=")
	for i, p := range o.ALPN {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(p))
	}
	b.WriteByte(' ')
	field("min", normalizeMinVersion(o.MinVersion))
	return strings.TrimSuffix(b.String(), " ")
}

// cleanPath cleans a file path for comparison; empty stays empty.
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}
