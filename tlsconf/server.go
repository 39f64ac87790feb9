package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CertFiles names one certificate/key pair a Server serves.
type CertFiles struct {
	// CertFile is a PEM file with the certificate first and any
	// intermediate certificates after it.
	CertFile string

	// KeyFile is a PEM file with the unencrypted private key (PKCS #1,
	// PKCS #8 or SEC 1; RSA, ECDSA or Ed25519).
	KeyFile string

	// Names are the server names (SNI) this pair serves. A name may be a
	// wildcard one label deep, "*.example.com". When empty, the pair
	// serves the DNS names of its certificate (the subject alternative
	// names, or the common name when there are none), and follows them
	// when the certificate is replaced.
	Names []string
}

// Client authentication modes for ServerOptions.ClientAuth.
const (
	// ClientAuthNone asks clients for no certificate (the default).
	ClientAuthNone = "none"
	// ClientAuthRequest asks for a certificate but accepts a client that
	// sends none, and does not verify one that is sent.
	ClientAuthRequest = "request"
	// ClientAuthRequire refuses a client that sends no certificate, but
	// does not verify the one sent.
	ClientAuthRequire = "require"
	// ClientAuthVerifyIfGiven accepts a client that sends no certificate,
	// and verifies against ClientCAFile the one that is sent.
	ClientAuthVerifyIfGiven = "verify_if_given"
	// ClientAuthRequireAndVerify refuses a client without a certificate
	// that verifies against ClientCAFile (mutual TLS).
	ClientAuthRequireAndVerify = "require_and_verify"
)

// ServerOptions configures TLS termination. The zero value of every field
// but Certs means its default.
type ServerOptions struct {
	// Certs are the certificate/key pairs to serve; at least one.
	Certs []CertFiles

	// Default is the index in Certs of the pair served to clients that
	// send no server name, or one no pair serves. Zero: the first pair.
	Default int

	// ClientAuth is one of "" (same as "none"), ClientAuthNone,
	// ClientAuthRequest, ClientAuthRequire, ClientAuthVerifyIfGiven and
	// ClientAuthRequireAndVerify. When ClientCAFile is set and ClientAuth
	// is empty, the mode is ClientAuthRequireAndVerify.
	ClientAuth string

	// ClientCAFile is a PEM file of the CA certificates client
	// certificates must chain to. Required by the verifying modes. When
	// it changes, new handshakes verify against the new CAs; a client
	// resuming an earlier session keeps the identity verified then, as
	// session resumption skips certificates.
	ClientCAFile string

	// MinVersion is "1.2" (DefaultMinVersion, when empty) or "1.3".
	MinVersion string

	// ALPN lists the application protocols offered, most preferred
	// first. Empty: DefaultALPN().
	ALPN []string

	// ReloadInterval is how often the certificate, key and client CA
	// files are checked for changes. Zero: DefaultReloadInterval.
	// Negative: never; Reload still checks on demand.
	ReloadInterval time.Duration

	// OnReload, when set, is called after every check that found a
	// changed file: with nil when every changed file was loaded, or with
	// an error naming each file that could not be used (their previous
	// contents stay in service). A periodic check gives a file that was
	// modified in the last two seconds time to be completed before it
	// reports it unusable; Reload reports at once. Each unusable version
	// of a file is reported once. Calls come one at a time, from the
	// checking goroutine or from Reload, and must not call Reload or Close.
	OnReload func(err error)
}

// CertInfo describes one served certificate, for logs and status pages.
type CertInfo struct {
	// CertFile and KeyFile are the files the pair was read from.
	CertFile, KeyFile string
	// Names are the server names the pair is selected for, normalized
	// (lower case, no trailing dot).
	Names []string
	// Default reports whether the pair also serves clients whose server
	// name no pair serves.
	Default bool
	// Subject is the certificate's subject, as text.
	Subject string
	// DNSNames are the certificate's DNS subject alternative names.
	DNSNames []string
	// NotBefore and NotAfter bound the certificate's validity.
	NotBefore, NotAfter time.Time
}

// Server holds the TLS configuration for connections from clients and
// keeps its certificates current with the files on disk. Create one with
// NewServer; it is safe for concurrent use.
type Server struct {
	opts  ServerOptions
	base  *tls.Config // template of every per-handshake config
	outer *tls.Config // what TLSConfig returns
	cur   atomic.Pointer[snapshot]

	mu    sync.Mutex // serializes checks; guards pairs and ca
	pairs []*pairState
	ca    caState

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// pairState is one configured pair and the certificate in service.
type pairState struct {
	files CertFiles
	names []string // explicit names, normalized; nil: from the certificate
	cert  *tls.Certificate
	w     watch
}

// caState is the client CA file and the pool in service.
type caState struct {
	pool *x509.CertPool
	w    watch
}

// snapshot is one immutable generation of what handshakes use.
type snapshot struct {
	exact map[string][]*tls.Certificate
	wild  map[string][]*tls.Certificate // keyed by the name after "*."
	def   *tls.Certificate
	conf  *tls.Config
	infos []CertInfo
}

// NewServer reads every certificate, key and CA file named in opts and
// returns a Server serving them. It fails, naming the file and what is
// wrong with it, when any file cannot be used. Unless opts.ReloadInterval
// is negative it starts one goroutine that checks the files for changes;
// Close stops it.
func NewServer(opts ServerOptions) (*Server, error) {
	if len(opts.Certs) == 0 {
		return nil, errorf("no certificate configured")
	}
	if opts.Default < 0 || opts.Default >= len(opts.Certs) {
		return nil, errorf("default certificate %d: there are only %d certificates", opts.Default, len(opts.Certs))
	}
	minV, err := parseMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	mode, err := parseClientAuth(opts.ClientAuth, opts.ClientCAFile)
	if err != nil {
		return nil, err
	}
	if len(opts.ALPN) == 0 {
		opts.ALPN = DefaultALPN()
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	opts.Certs = append([]CertFiles(nil), opts.Certs...)
	opts.ALPN = append([]string(nil), opts.ALPN...)

	s := &Server{
		opts: opts,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	var errs []error
	for i, cf := range opts.Certs {
		if cf.CertFile == "" || cf.KeyFile == "" {
			errs = append(errs, errorf("certificate %d: both a certificate file and a key file are needed", i+1))
			continue
		}
		p := &pairState{files: cf, w: watch{paths: []string{cf.CertFile, cf.KeyFile}}}
		for _, n := range cf.Names {
			nn, err := normalizeServeName(n)
			if err != nil {
				errs = append(errs, errorf("%s: name %q: %v", cf.CertFile, n, err))
				continue
			}
			p.names = append(p.names, nn)
		}
		if _, err := s.checkPair(p, checkAll); err != nil {
			errs = append(errs, err)
		}
		s.pairs = append(s.pairs, p)
	}
	if opts.ClientCAFile != "" {
		s.ca.w.paths = []string{opts.ClientCAFile}
		if _, err := s.checkCA(checkAll); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	s.base = &tls.Config{
		MinVersion:       minV,
		CipherSuites:     ServerCipherSuites(),
		CurvePreferences: CurvePreferences(),
		NextProtos:       opts.ALPN,
		ClientAuth:       mode,
	}
	s.outer = s.base.Clone()
	s.outer.GetConfigForClient = s.configForClient
	s.outer.GetCertificate = s.getCertificate
	s.publish()

	if opts.ReloadInterval > 0 {
		go s.poll(opts.ReloadInterval)
	} else {
		close(s.done)
	}
	return s, nil
}

// parseClientAuth maps a ClientAuth option to Go's mode, checking that a
// verifying mode has a CA file.
func parseClientAuth(mode, caFile string) (tls.ClientAuthType, error) {
	var m tls.ClientAuthType
	switch mode {
	case "":
		if caFile != "" {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.NoClientCert, nil
	case ClientAuthNone:
		if caFile != "" {
			return 0, errorf("client_auth is %q but a client CA file is set; choose a verifying mode or drop the CA file", mode)
		}
		return tls.NoClientCert, nil
	case ClientAuthRequest:
		m = tls.RequestClientCert
	case ClientAuthRequire:
		m = tls.RequireAnyClientCert
	case ClientAuthVerifyIfGiven:
		m = tls.VerifyClientCertIfGiven
	case ClientAuthRequireAndVerify:
		m = tls.RequireAndVerifyClientCert
	default:
		return 0, errorf("client_auth %q: want one of none, request, require, verify_if_given, require_and_verify", mode)
	}
	if m >= tls.VerifyClientCertIfGiven && caFile == "" {
		return 0, errorf("client_auth %q needs a client CA file to verify against", mode)
	}
	return m, nil
}

// TLSConfig returns the configuration to pass to tls.NewListener or
// tls.Server. It always returns the same *tls.Config, so session tickets
// issued by one listener resume on another. Each handshake runs with the
// certificates and client CAs current at that moment (through
// GetConfigForClient), so changing fields of the returned config has no
// effect on handshakes; the config must not be modified.
func (s *Server) TLSConfig() *tls.Config { return s.outer }

// Certificates describes the pairs in service, in the order configured.
func (s *Server) Certificates() []CertInfo {
	infos := s.cur.Load().infos
	out := make([]CertInfo, len(infos))
	for i, in := range infos {
		in.Names = append([]string(nil), in.Names...)
		in.DNSNames = append([]string(nil), in.DNSNames...)
		out[i] = in
	}
	return out
}

// Reload checks every file now instead of waiting for the next periodic
// check, and returns what the check would pass to OnReload (which it also
// calls when a file changed). Files that did not change are not read
// again.
func (s *Server) Reload() error {
	return s.check(checkNow)
}

// Close stops the periodic checks and waits for a running check to end.
// Handshakes keep working with the certificates last loaded. Calling
// Close more than once is safe.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
	})
	<-s.done
}

// poll checks the files every interval until Close.
func (s *Server) poll(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.check(checkSettle)
		}
	}
}

// check looks at every file, loads what changed, publishes a new snapshot
// if anything changed, and reports to OnReload.
func (s *Server) check(mode checkMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	var errs []error
	for _, p := range s.pairs {
		c, err := s.checkPair(p, mode)
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.ca.w.paths != nil {
		c, err := s.checkCA(mode)
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		}
	}
	if changed {
		s.publish()
	}
	err := errors.Join(errs...)
	if (changed || err != nil) && s.opts.OnReload != nil {
		s.opts.OnReload(err)
	}
	return err
}

// checkMode says how a check treats files.
type checkMode int

const (
	// checkAll reads every file whatever its stamp (at startup).
	checkAll checkMode = iota
	// checkNow reads changed files and reports any problem at once (an
	// explicit Reload).
	checkNow
	// checkSettle is checkNow, except that unusable contents modified
	// less than settleWindow ago are not reported yet (a periodic check).
	checkSettle
)

// settleWindow is how long after its last modification an unusable file
// is left to its writer before a periodic check reports it. A deploy tool
// that writes the key and then the certificate leaves a mismatched pair
// for a moment; that moment is not worth an error in the log. The file is
// read again at every check until it is usable or the window has passed.
var settleWindow = 2 * time.Second

// watch follows the files behind one loaded value (a certificate pair, or
// the client CA pool).
type watch struct {
	paths      []string
	stamps     []stamp           // nil: read at the next check
	sum        [sha256.Size]byte // of the contents in service
	loaded     bool
	badSum     [sha256.Size]byte // of the last contents found unusable
	hasBad     bool
	lastReport string // the last error reported
}

// check reads the files again if they changed and hands their contents to
// load, which puts them in service or returns why it cannot. It reports
// whether new contents went into service, and an error only the first time
// given unusable contents are seen, so a broken file is reported once, not
// at every check.
func (w *watch) check(mode checkMode, load func(contents [][]byte) error) (bool, error) {
	stamps := make([]stamp, len(w.paths))
	same := mode != checkAll && len(w.stamps) == len(w.paths)
	for i, p := range w.paths {
		stamps[i] = statFile(p)
		if same && !stamps[i].unchanged(w.stamps[i]) {
			same = false
		}
	}
	if same {
		return false, nil
	}
	w.stamps = stamps
	contents := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		b, err := readFile(p)
		if err != nil {
			return w.fail(err)
		}
		contents[i] = b
	}
	sum := sumOf(contents)
	if w.loaded && sum == w.sum {
		w.lastReport = ""
		return false, nil
	}
	if w.hasBad && sum == w.badSum {
		return false, nil
	}
	if err := load(contents); err != nil {
		if mode == checkSettle && settling(stamps) {
			w.stamps = nil
			return false, nil
		}
		w.badSum, w.hasBad = sum, true
		return w.fail(err)
	}
	w.sum, w.loaded, w.hasBad, w.lastReport = sum, true, false, ""
	return true, nil
}

// fail returns err unless it is the one reported last.
func (w *watch) fail(err error) (bool, error) {
	if err.Error() == w.lastReport {
		return false, nil
	}
	w.lastReport = err.Error()
	return false, err
}

// settling reports whether any of the files was modified less than
// settleWindow ago.
func settling(stamps []stamp) bool {
	for _, st := range stamps {
		if st.fi != nil && time.Since(st.fi.ModTime()) < settleWindow {
			return true
		}
	}
	return false
}

// checkPair checks one pair's files; see watch.check.
func (s *Server) checkPair(p *pairState, mode checkMode) (bool, error) {
	return p.w.check(mode, func(c [][]byte) error {
		cert, err := parseKeyPair(p.files.CertFile, p.files.KeyFile, c[0], c[1])
		if err != nil {
			return err
		}
		p.cert = cert
		return nil
	})
}

// checkCA checks the client CA file; see watch.check.
func (s *Server) checkCA(mode checkMode) (bool, error) {
	return s.ca.w.check(mode, func(c [][]byte) error {
		pool, err := parseCAPool(s.ca.w.paths[0], c[0])
		if err != nil {
			return err
		}
		s.ca.pool = pool
		return nil
	})
}

// publish builds a snapshot from the pairs and CA pool in service and
// makes it the one new handshakes use. Called with s.mu held, or before
// the Server is shared.
func (s *Server) publish() {
	snap := &snapshot{
		exact: make(map[string][]*tls.Certificate),
		wild:  make(map[string][]*tls.Certificate),
	}
	for i, p := range s.pairs {
		names := p.names
		if names == nil {
			names = certNames(p.cert.Leaf)
		}
		for _, n := range names {
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				snap.wild[rest] = append(snap.wild[rest], p.cert)
			} else {
				snap.exact[n] = append(snap.exact[n], p.cert)
			}
		}
		leaf := p.cert.Leaf
		snap.infos = append(snap.infos, CertInfo{
			CertFile:  p.files.CertFile,
			KeyFile:   p.files.KeyFile,
			Names:     names,
			Default:   i == s.opts.Default,
			Subject:   leaf.Subject.String(),
			DNSNames:  leaf.DNSNames,
			NotBefore: leaf.NotBefore,
			NotAfter:  leaf.NotAfter,
		})
	}
	snap.def = s.pairs[s.opts.Default].cert
	conf := s.base.Clone()
	conf.GetCertificate = snap.pick
	conf.ClientCAs = s.ca.pool
	snap.conf = conf
	s.cur.Store(snap)
}

// configForClient is the outer config's GetConfigForClient: the config of
// the snapshot current when the handshake starts.
func (s *Server) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return s.cur.Load().conf, nil
}

// getCertificate picks from the current snapshot, for users of the outer
// config that bypass GetConfigForClient.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().pick(hello)
}

// pick chooses the certificate for a handshake: exact name, then wildcard
// one label deep, then the default.
func (snap *snapshot) pick(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeName(hello.ServerName)
	if name != "" {
		if c := choose(snap.exact[name], hello); c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := choose(snap.wild[name[i+1:]], hello); c != nil {
				return c, nil
			}
		}
	}
	return snap.def, nil
}

// choose returns the first candidate the client supports, or the first
// candidate when it supports none (the handshake will then report why).
func choose(cands []*tls.Certificate, hello *tls.ClientHelloInfo) *tls.Certificate {
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return cands[0]
}

// normalizeName lower-cases a server name and drops trailing dots,
// without allocating when there is nothing to change.
func normalizeName(n string) string {
	n = strings.TrimRight(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

// normalizeServeName normalizes a configured name and checks its shape:
// a host name, or "*." followed by one.
func normalizeServeName(n string) (string, error) {
	n = normalizeName(strings.TrimSpace(n))
	host := strings.TrimPrefix(n, "*.")
	if host == "" || strings.Contains(host, "*") {
		return "", errors.New(`want a host name or a wildcard "*.example.com"`)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return "", errors.New("empty label")
		}
	}
	if strings.ContainsAny(host, " /:\t") {
		return "", errors.New("not a host name")
	}
	return n, nil
}

// certNames returns the names a certificate serves by default: its DNS
// subject alternative names, or its common name when it has none.
func certNames(leaf *x509.Certificate) []string {
	var out []string
	src := leaf.DNSNames
	if len(src) == 0 && leaf.Subject.CommonName != "" {
		src = []string{leaf.Subject.CommonName}
	}
	for _, n := range src {
		if nn, err := normalizeServeName(n); err == nil {
			out = append(out, nn)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// racyWindow is how recent a file's modification time must be for its
// stamp to be distrusted: file systems record times with a granularity
// (a kernel tick, or up to seconds on some), so two writes close together
// may leave the same stamp. A file modified that recently is read and
// compared by content at the next check.
const racyWindow = 2 * time.Second

// stamp is what a check remembers of a file without reading it.
type stamp struct {
	fi   os.FileInfo // nil when the file could not be examined
	err  string
	racy bool
}

// statFile stamps a file, following symlinks, so a swapped link counts as
// a change.
func statFile(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{err: err.Error()}
	}
	return stamp{fi: fi, racy: time.Since(fi.ModTime()) < racyWindow}
}

// unchanged reports whether a file stamped prev and now stamped s can be
// taken as not changed without reading it.
func (s stamp) unchanged(prev stamp) bool {
	if prev.racy {
		return false
	}
	if s.fi == nil || prev.fi == nil {
		return s.fi == nil && prev.fi == nil && s.err == prev.err
	}
	return os.SameFile(s.fi, prev.fi) &&
		s.fi.Size() == prev.fi.Size() &&
		s.fi.ModTime().Equal(prev.fi.ModTime())
}
