package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of [Config]. Each applies when the matching field is zero.
const (
	// DefaultMinTTL is the shortest time an answer stays cached, whatever
	// TTL it carries. It keeps records with TTL 0 or 1 from turning every
	// request into a DNS query.
	DefaultMinTTL = 5 * time.Second

	// DefaultMaxTTL is the longest time a positive answer stays cached,
	// whatever TTL it carries, so a changed record is seen within an hour.
	DefaultMaxTTL = time.Hour

	// DefaultNegativeTTL is how long a "no such name" or "no address"
	// answer is cached when it carries no SOA record to take the negative
	// TTL from (RFC 2308, section 5).
	DefaultNegativeTTL = 30 * time.Second

	// DefaultMaxNegativeTTL is the longest time a negative answer stays
	// cached, so a name that starts to exist is found within five minutes.
	DefaultMaxNegativeTTL = 5 * time.Minute

	// DefaultUnknownTTL is how long a positive answer is cached when the
	// backend cannot tell its TTL ([System] never can).
	DefaultUnknownTTL = 30 * time.Second

	// DefaultFailureTTL is how long a failed lookup (timeout, SERVFAIL,
	// unreachable nameserver) is remembered before it is tried again.
	DefaultFailureTTL = time.Second

	// DefaultMaxEntries bounds the cache: the number of names it holds.
	// One entry takes about 300 bytes plus its addresses.
	DefaultMaxEntries = 10000

	// DefaultLookupTimeout bounds one query to the backend, retries and
	// the TCP fallback included.
	DefaultLookupTimeout = 5 * time.Second

	// DefaultHostsFile is the hosts file consulted before the cache.
	DefaultHostsFile = "/etc/hosts"

	// HostsRecheckInterval is how often, at most, the hosts file is
	// checked for changes (its modification time and size).
	HostsRecheckInterval = 5 * time.Second

	// MaxNameLength is the longest name accepted, in bytes, without the
	// trailing dot (RFC 1035 allows 255 bytes on the wire, which is 253
	// in text).
	MaxNameLength = 253

	// MaxLabelLength is the longest label (the part between two dots), in
	// bytes (RFC 1035).
	MaxLabelLength = 63
)

// TTLUnknown in [Answer.TTL] says the backend does not know how long the
// answer may be cached; the [Resolver] then uses its configured default.
const TTLUnknown time.Duration = -1

// Errors a lookup can wrap. Test for them with errors.Is.
var (
	// ErrNotFound: the name does not exist (NXDOMAIN) or has no address
	// (NODATA for both A and AAAA). A proxy answers "host unreachable".
	ErrNotFound = errors.New("no such host")

	// ErrTimeout: no answer came in time, from the backend or before the
	// caller's context ended with a deadline.
	ErrTimeout = errors.New("timeout")

	// ErrServerFailure: every nameserver answered with an error code
	// (SERVFAIL, REFUSED, ...) or an unusable answer.
	ErrServerFailure = errors.New("server failure")

	// ErrInvalidName: the host is neither an IP address nor a valid DNS
	// name (see the package documentation for the rules).
	ErrInvalidName = errors.New("invalid host name")
)

// LookupError is the error [Resolver.LookupNetIP] returns: the host that
// was asked for and why it failed.
type LookupError struct {
	// Host is the host as the caller passed it.
	Host string
	// Err is the cause; it wraps one of the package's sentinel errors
	// when one applies.
	Err error
}

// Error reads "lookup <host>: <cause>".
func (e *LookupError) Error() string { return "lookup " + e.Host + ": " + e.Err.Error() }

// Unwrap returns the cause, so errors.Is sees the sentinel errors.
func (e *LookupError) Unwrap() error { return e.Err }

// Timeout reports whether the lookup failed for lack of time, like
// net.Error's method of the same name.
func (e *LookupError) Timeout() bool {
	return errors.Is(e.Err, ErrTimeout) || errors.Is(e.Err, context.DeadlineExceeded)
}

// Family is an address family: which record type a [Backend] is asked for.
type Family uint8

// The two families: A records and AAAA records.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "A" or "AAAA", the record type of the family.
func (f Family) String() string {
	if f == IPv4 {
		return "A"
	}
	return "AAAA"
}

func (f Family) index() int {
	if f == IPv4 {
		return 0
	}
	return 1
}

// Answer is what a [Backend] found for one name in one family.
type Answer struct {
	// Addrs are the addresses, all of the family that was asked for.
	// Empty with NXDomain false means the name exists but has no address
	// of this family (NODATA).
	Addrs []netip.Addr
	// NXDomain reports that the name does not exist at all.
	NXDomain bool
	// TTL is how long the answer may be cached: for addresses, the
	// smallest TTL of the records used; for a negative answer, the
	// negative TTL of RFC 2308. TTLUnknown when the backend cannot tell.
	// The Resolver clamps it to its configured bounds.
	TTL time.Duration
}

// Backend answers one question for the [Resolver]. Query returns the
// addresses of name (canonical: lower case, no trailing dot) in family f,
// or an error when no usable answer came (a timeout, a server failure).
// "No such name" and "no such address" are answers, not errors. Query must
// stop when ctx ends and is called from many goroutines at once.
type Backend interface {
	Query(ctx context.Context, name string, f Family) (Answer, error)
}

// Config configures a [Resolver]. Every zero field takes its default.
type Config struct {
	// Backend answers what the cache does not hold. Nil means a
	// [DNSClient] for the nameservers of /etc/resolv.conf.
	Backend Backend

	// MinTTL and MaxTTL clamp the TTL of positive answers (defaults
	// DefaultMinTTL and DefaultMaxTTL). MinTTL also bounds negative
	// answers from below.
	MinTTL, MaxTTL time.Duration
	// NegativeTTL is used for negative answers without an SOA record
	// (default DefaultNegativeTTL).
	NegativeTTL time.Duration
	// MaxNegativeTTL bounds the TTL of negative answers (default
	// DefaultMaxNegativeTTL).
	MaxNegativeTTL time.Duration
	// UnknownTTL is used for positive answers whose TTL the backend does
	// not know (default DefaultUnknownTTL).
	UnknownTTL time.Duration
	// FailureTTL is how long a failed lookup is remembered (default
	// DefaultFailureTTL).
	FailureTTL time.Duration

	// MaxEntries bounds the number of names cached (default
	// DefaultMaxEntries).
	MaxEntries int

	// LookupTimeout bounds one backend query (default
	// DefaultLookupTimeout).
	LookupTimeout time.Duration

	// HostsFile is the hosts file to consult (default DefaultHostsFile).
	// A missing file is treated as empty.
	HostsFile string
	// IgnoreHosts skips the hosts file altogether.
	IgnoreHosts bool

	// Now is the clock the cache reads expiry times from (default
	// time.Now). Tests set it to move time forward without waiting.
	Now func() time.Time
}

// Resolver is a caching resolver. Its methods are safe for concurrent use.
// Create one with [New].
type Resolver struct {
	backend                Backend
	minTTL, maxTTL         time.Duration
	negTTL, maxNegTTL      time.Duration
	unknownTTL, failureTTL time.Duration
	lookupTimeout          time.Duration
	now                    func() time.Time
	hosts                  *hostsFile // nil when ignored

	mu      sync.Mutex
	cache   *cache
	flights map[flightKey]*flight
}

// New returns a Resolver configured by cfg. It fails when no backend was
// given and /etc/resolv.conf cannot be used (see [NewDNSClient]), or when
// cfg is inconsistent (MinTTL above MaxTTL).
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{
		backend:       cfg.Backend,
		minTTL:        orDuration(cfg.MinTTL, DefaultMinTTL),
		maxTTL:        orDuration(cfg.MaxTTL, DefaultMaxTTL),
		negTTL:        orDuration(cfg.NegativeTTL, DefaultNegativeTTL),
		maxNegTTL:     orDuration(cfg.MaxNegativeTTL, DefaultMaxNegativeTTL),
		unknownTTL:    orDuration(cfg.UnknownTTL, DefaultUnknownTTL),
		failureTTL:    orDuration(cfg.FailureTTL, DefaultFailureTTL),
		lookupTimeout: orDuration(cfg.LookupTimeout, DefaultLookupTimeout),
		now:           cfg.Now,
		flights:       make(map[flightKey]*flight),
	}
	if r.minTTL > r.maxTTL || r.minTTL > r.maxNegTTL {
		return nil, fmt.Errorf("resolver: MinTTL %v is above MaxTTL %v or MaxNegativeTTL %v", r.minTTL, r.maxTTL, r.maxNegTTL)
	}
	if r.now == nil {
		r.now = time.Now
	}
	maxEntries := cfg.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	r.cache = newCache(maxEntries)
	if r.backend == nil {
		c, err := NewDNSClient(DNSConfig{})
		if err != nil {
			return nil, err
		}
		r.backend = c
	}
	if !cfg.IgnoreHosts {
		path := cfg.HostsFile
		if path == "" {
			path = DefaultHostsFile
		}
		r.hosts = &hostsFile{path: path}
		r.hosts.mu.Lock()
		r.hosts.refresh(r.now())
		r.hosts.mu.Unlock()
	}
	return r, nil
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// LookupNetIP returns the addresses of host: IPv4 addresses first, then
// IPv6 ones. See the package documentation for the order in which the
// sources are asked. The error is a [*LookupError]; errors.Is(err,
// ErrNotFound) tells "the name has no address" from a failure to find out.
// The returned slice belongs to the caller.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	name, ok := canonicalName(host)
	if !ok {
		return nil, &LookupError{Host: host, Err: ErrInvalidName}
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	if r.hosts != nil {
		if addrs := r.hosts.lookup(name, r.now()); len(addrs) > 0 {
			return addrs, nil
		}
	}

	// Join (or start) both queries before waiting for either, so A and
	// AAAA are asked in parallel.
	v4, f4 := r.join(ctx, name, IPv4)
	v6, f6 := r.join(ctx, name, IPv6)
	var err4, err6 error
	if f4 != nil {
		v4, err4 = wait(ctx, f4)
	}
	if f6 != nil {
		v6, err6 = wait(ctx, f6)
	}
	if err := errors.Join(err4, err6); err != nil {
		return nil, &LookupError{Host: host, Err: contextError(err4, err6)}
	}

	if n := len(v4.addrs) + len(v6.addrs); n > 0 {
		addrs := make([]netip.Addr, 0, n)
		addrs = append(addrs, v4.addrs...)
		return append(addrs, v6.addrs...), nil
	}
	switch {
	case v4.nxdomain || v6.nxdomain:
		return nil, &LookupError{Host: host, Err: ErrNotFound}
	case v4.err != nil:
		return nil, &LookupError{Host: host, Err: v4.err}
	case v6.err != nil:
		return nil, &LookupError{Host: host, Err: v6.err}
	}
	return nil, &LookupError{Host: host, Err: ErrNotFound}
}

// contextError turns the caller's context error into the lookup's cause:
// a deadline is also an ErrTimeout.
func contextError(errs ...error) error {
	for _, err := range errs {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Flush empties the cache. Queries in flight still complete and are
// cached.
func (r *Resolver) Flush() {
	r.mu.Lock()
	r.cache.clear()
	r.mu.Unlock()
}

// result is what the cache keeps for one name in one family.
type result struct {
	addrs    []netip.Addr
	nxdomain bool
	err      error // the lookup failed; addrs is empty
}

type flightKey struct {
	name string
	fam  Family
}

// flight is one backend query that callers share.
type flight struct {
	done    chan struct{} // closed once res is set
	res     result
	waiters int // callers that joined, the first included; guarded by Resolver.mu
}

// join returns the cached result for (name, fam), or the flight that will
// produce it, starting one if none is under way.
func (r *Resolver) join(ctx context.Context, name string, fam Family) (result, *flight) {
	key := flightKey{name, fam}
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.cache.get(name, fam, r.now()); ok {
		return res, nil
	}
	f := r.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		r.flights[key] = f
		go r.fly(context.WithoutCancel(ctx), key, f)
	}
	f.waiters++
	return result{}, f
}

// wait returns the flight's result, or the caller's context error when
// that ends first.
func wait(ctx context.Context, f *flight) (result, error) {
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// fly runs the query of one flight, caches its result and releases the
// callers waiting for it. ctx carries the first caller's values but not
// its cancellation.
func (r *Resolver) fly(ctx context.Context, key flightKey, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, r.lookupTimeout)
	ans, err := r.backend.Query(ctx, key.name, key.fam)
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	cancel()

	var res result
	var ttl time.Duration
	switch {
	case err != nil:
		res.err = err
		ttl = r.failureTTL
	case len(ans.Addrs) > 0:
		res.addrs = keepFamily(ans.Addrs, key.fam)
		ttl = r.clamp(ans.TTL, r.unknownTTL, r.maxTTL)
	default:
		res.nxdomain = ans.NXDomain
		ttl = r.clamp(ans.TTL, r.negTTL, r.maxNegTTL)
	}

	r.mu.Lock()
	r.cache.put(key.name, key.fam, res, r.now().Add(ttl))
	delete(r.flights, key)
	f.res = res
	r.mu.Unlock()
	close(f.done)
}

// clamp bounds ttl to [minTTL, upper], replacing TTLUnknown with unknown.
func (r *Resolver) clamp(ttl, unknown, upper time.Duration) time.Duration {
	if ttl < 0 {
		ttl = unknown
	}
	return min(max(ttl, r.minTTL), upper)
}

// keepFamily drops addresses of the other family, which a misbehaving
// backend might return, and unmaps IPv4-mapped IPv6 addresses in IPv4
// answers.
func keepFamily(addrs []netip.Addr, fam Family) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if fam == IPv4 {
			a = a.Unmap()
			if a.Is4() {
				out = append(out, a)
			}
		} else if a.Is6() && !a.Is4In6() {
			out = append(out, a)
		}
	}
	return out
}

// canonicalName lower-cases host, drops one trailing dot and checks it is
// a valid DNS name: labels of letters, digits, '-' and '_', 1 to
// MaxLabelLength bytes, not starting or ending with '-', at most
// MaxNameLength bytes in all.
func canonicalName(host string) (string, bool) {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > MaxNameLength {
		return "", false
	}
	label := 0
	var last byte = '.'
	lower := false
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
			label++
		case 'A' <= c && c <= 'Z':
			label++
			lower = true
		case c == '-':
			if last == '.' {
				return "", false
			}
			label++
		case c == '.':
			if last == '.' || last == '-' {
				return "", false
			}
			label = 0
		default:
			return "", false
		}
		if label > MaxLabelLength {
			return "", false
		}
		last = c
	}
	if last == '-' {
		return "", false
	}
	if lower {
		host = strings.ToLower(host)
	}
	return host, true
}
