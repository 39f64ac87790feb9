// Package tlsconf builds the TLS configurations Weir uses on both sides of a
// proxied connection: toward clients (TLS termination, [NewServer]) and
// toward upstreams ([NewClient]). It also offers certificates obtained
// automatically over ACME ([NewACME]) and a self-signed certificate maker
// for tests and quick local use ([SelfSigned]).
//
// # Termination
//
// A [Server] serves one or more certificate/key pairs read from PEM files.
// Each handshake picks the pair by the name the client sent (SNI): an exact
// name first, then a wildcard one label deep ("*.example.com" serves
// "a.example.com" but neither "a.b.example.com" nor "example.com"), then
// the default pair. Names compare case-insensitively and a trailing dot is
// ignored. When two pairs serve the same name (an ECDSA and an RSA
// certificate, say), the first one the client can use wins.
//
// The files are checked for changes every [DefaultReloadInterval]. A file
// replaced on disk, whether overwritten in place, renamed over the old one
// (the write-then-rename pattern of certbot and most deploy tools) or
// reached through a swapped symlink (Kubernetes secret volumes), is read
// again and served on new handshakes; connections already open keep the
// certificate they started with. A replacement that cannot be used (bad
// PEM, a key that does not match its certificate, a file that cannot be
// read) leaves the previous certificate in service and is reported through
// [ServerOptions.OnReload]; a file modified in the last two seconds is
// first given that long to be completed, so a deploy tool that writes the
// key and then the certificate causes no report. [Server.Reload] checks at
// once, for a reload signal.
//
// # Defaults
//
// Every default is a named constant or function of this package:
//
//   - [DefaultMinVersion]: TLS 1.2 on both sides; "1.3" may be asked for,
//     older versions are refused.
//   - [ServerCipherSuites]: toward clients, TLS 1.2 uses only ECDHE key
//     exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305). The TLS 1.3
//     suites are fixed by Go and all are safe. Toward upstreams Weir keeps
//     Go's own default list, which also accepts the ECDHE CBC suites some
//     older origins still need.
//   - [CurvePreferences]: the hybrid post-quantum X25519MLKEM768 first,
//     then X25519 and P-256.
//   - [DefaultALPN]: "h2" then "http/1.1" toward clients; toward upstreams
//     no ALPN unless asked.
//   - [DefaultReloadInterval]: 5s between checks of the certificate, key
//     and CA files; a negative interval turns the checks off.
//   - [DefaultClientSessionCacheSize]: how many upstream sessions each
//     client configuration remembers for resumption.
//   - Session tickets are on toward clients, so clients resume sessions;
//     Go rotates the ticket keys itself.
//   - Certificate verification toward upstreams is on, against the
//     system roots unless a CA file is given.
//   - [DefaultACMECA]: Let's Encrypt's production directory when ACME is
//     used.
//
// # ACME
//
// [NewACME] obtains and renews certificates through the certmagic library,
// solving the TLS-ALPN-01 and HTTP-01 challenges the way certmagic does.
// Its test runs against a local Pebble ACME server built from the module
// graph; that test is skipped when Pebble cannot be built on the machine.
package tlsconf

import (
	"crypto/tls"
	"time"
)

const (
	// DefaultMinVersion is the lowest TLS version Weir accepts or offers
	// when ServerOptions.MinVersion or ClientOptions.MinVersion is empty.
	// The only other accepted value is "1.3".
	DefaultMinVersion = "1.2"

	// DefaultReloadInterval is how often a Server checks its certificate,
	// key and client CA files for changes when
	// ServerOptions.ReloadInterval is zero.
	DefaultReloadInterval = 5 * time.Second

	// DefaultClientSessionCacheSize is how many TLS sessions a client
	// configuration made by NewClient keeps, so that new connections to an
	// upstream resume a session instead of running a full handshake.
	DefaultClientSessionCacheSize = 256

	// ALPNHTTP2 is the ALPN protocol name of HTTP/2 over TLS.
	ALPNHTTP2 = "h2"

	// ALPNHTTP1 is the ALPN protocol name of HTTP/1.1.
	ALPNHTTP1 = "http/1.1"
)

// DefaultALPN returns the application protocols a Server offers when
// ServerOptions.ALPN is empty: HTTP/2 first, then HTTP/1.1. Each call
// returns a new slice.
func DefaultALPN() []string { return []string{ALPNHTTP2, ALPNHTTP1} }

// ServerCipherSuites returns the TLS 1.2 cipher suites a Server accepts:
// ECDHE key exchange with AEAD ciphers only. TLS 1.3 suites are not listed
// because Go does not let them be configured. Each call returns a new slice.
func ServerCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// CurvePreferences returns the key exchange groups Weir offers on both
// sides, most preferred first: the hybrid post-quantum X25519MLKEM768,
// X25519, then P-256. Each call returns a new slice.
func CurvePreferences() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
}

// parseMinVersion turns a MinVersion option into a tls version number.
func parseMinVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, errorf("min_version %q: TLS versions before 1.2 are not supported", v)
	}
	return 0, errorf("min_version %q: want \"1.2\" or \"1.3\"", v)
}

// normalizeMinVersion returns the canonical spelling of a MinVersion
// option, for keys.
func normalizeMinVersion(v string) string {
	if v == "" {
		return DefaultMinVersion
	}
	return v
}
