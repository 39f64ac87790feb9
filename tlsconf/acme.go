package tlsconf

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// DefaultACMECA is the ACME directory used when ACMEOptions.CA is empty:
// Let's Encrypt's production service.
const DefaultACMECA = certmagic.LetsEncryptProductionCA

// acmeTLSALPNProtocol is the ALPN protocol of the TLS-ALPN-01 challenge
// (RFC 8737), offered so that renewals can be validated on Weir's own
// listener.
const acmeTLSALPNProtocol = "acme-tls/1"

// ACMEOptions configures certificates obtained and renewed automatically
// from an ACME certificate authority.
type ACMEOptions struct {
	// Email is the contact address of the ACME account; the CA writes to
	// it about expiring certificates and problems. May be empty.
	Email string

	// CA is the URL of the CA's ACME directory. Empty: DefaultACMECA.
	CA string

	// Domains are the names to obtain certificates for; at least one.
	// The first name that is not a wildcard also serves clients that send
	// no server name.
	Domains []string

	// StorageDir is the directory where the account, certificates and
	// keys are kept between runs, and where several Weir instances
	// coordinate when they share it. Required.
	StorageDir string

	// CARoot is a PEM file of the root certificate that the ACME
	// directory's own HTTPS certificate chains to, for private or test
	// CAs. Empty: the system roots.
	CARoot string

	// Agree accepts the CA's subscriber agreement. Required: NewACME
	// refuses to run without it.
	Agree bool

	// HTTPPort and TLSALPNPort are where the challenge listeners bind when
	// their port is free, for setups that forward ports 80 and 443 to
	// others. Zero: 80 and 443. When Weir itself holds the TLS-ALPN port
	// with TLSConfig, the challenge is answered by Weir's listener.
	HTTPPort, TLSALPNPort int

	// ALPN lists the application protocols offered to clients besides the
	// ACME challenge protocol. Empty: DefaultALPN().
	ALPN []string

	// MinVersion is "1.2" (DefaultMinVersion, when empty) or "1.3".
	MinVersion string

	// OnEvent, when set, is told of certificate events: "cert_obtained",
	// "cert_renewed", "cert_failed" (data["error"] holds the error) and
	// the other events the certmagic library emits. It must not block.
	OnEvent func(event string, data map[string]any)
}

// ACME serves certificates obtained over ACME and renews them before they
// expire. Create one with NewACME.
type ACME struct {
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
	conf   *tls.Config
	close  sync.Once
}

// NewACME loads the certificates for opts.Domains from opts.StorageDir,
// obtains from the CA those that are missing or due for renewal, and
// returns once every domain has a certificate, or with the first error.
// It should run before Weir binds ports 80 and 443, so that the
// challenge listeners can bind them for the first issuance; renewals later
// run in the background and answer TLS-ALPN-01 challenges through
// TLSConfig. ctx bounds the initial issuance. Close stops renewals.
func NewACME(ctx context.Context, opts ACMEOptions) (*ACME, error) {
	if len(opts.Domains) == 0 {
		return nil, errorf("acme: no domain configured")
	}
	if !opts.Agree {
		return nil, errorf("acme: the CA's subscriber agreement must be accepted (agree) before Weir can register an account")
	}
	if opts.StorageDir == "" {
		return nil, errorf("acme: a storage directory is required")
	}
	minV, err := parseMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	if opts.CA == "" {
		opts.CA = DefaultACMECA
	}
	if len(opts.ALPN) == 0 {
		opts.ALPN = DefaultALPN()
	}
	domains := make([]string, 0, len(opts.Domains))
	defName := ""
	for _, d := range opts.Domains {
		n, err := normalizeServeName(d)
		if err != nil {
			return nil, errorf("acme: domain %q: %v", d, err)
		}
		domains = append(domains, n)
		if defName == "" && !strings.HasPrefix(n, "*.") {
			defName = n
		}
	}
	tmpl := certmagic.ACMEIssuer{
		CA:             opts.CA,
		Email:          opts.Email,
		Agreed:         true,
		AltHTTPPort:    opts.HTTPPort,
		AltTLSALPNPort: opts.TLSALPNPort,
		Logger:         zap.NewNop(),
	}
	if opts.CARoot != "" {
		pool, _, err := loadCAPool(opts.CARoot)
		if err != nil {
			return nil, err
		}
		tmpl.TrustedRoots = pool
	}

	a := &ACME{}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zap.NewNop(),
	})
	mc := certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: opts.StorageDir},
		DefaultServerName: defName,
		Logger:            zap.NewNop(),
	}
	if opts.OnEvent != nil {
		onEvent := opts.OnEvent
		mc.OnEvent = func(_ context.Context, event string, data map[string]any) error {
			onEvent(event, data)
			return nil
		}
	}
	a.magic = certmagic.New(a.cache, mc)
	a.issuer = certmagic.NewACMEIssuer(a.magic, tmpl)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}

	if err := a.magic.ManageSync(ctx, domains); err != nil {
		a.cache.Stop()
		return nil, errorf("acme: %v", err)
	}
	a.conf = &tls.Config{
		MinVersion:       minV,
		CipherSuites:     ServerCipherSuites(),
		CurvePreferences: CurvePreferences(),
		NextProtos:       append(append([]string(nil), opts.ALPN...), acmeTLSALPNProtocol),
		GetCertificate:   a.magic.GetCertificate,
	}
	return a, nil
}

// TLSConfig returns the configuration to pass to tls.NewListener. It
// serves the managed certificates by server name, answers TLS-ALPN-01
// challenges during renewals, and always returns the same config, which
// must not be modified.
func (a *ACME) TLSConfig() *tls.Config { return a.conf }

// HandleHTTPChallenge answers r when it is an ACME HTTP-01 challenge
// request for a challenge this process (or one sharing StorageDir) is
// solving, and reports whether it did. A plain-HTTP listener on port 80
// that is served through net/http calls it first.
func (a *ACME) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// Close stops the background renewals. Handshakes keep serving the
// certificates already loaded. Calling Close more than once is safe.
func (a *ACME) Close() { a.close.Do(a.cache.Stop) }
