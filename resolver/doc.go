// Package resolver is the caching DNS resolver behind Weir's forward proxy.
// A forward proxy resolves whatever names its clients ask for, so the
// resolver is built to keep that cheap and predictable: answers are cached
// for as long as their TTL allows, names that do not exist are cached too,
// and many clients asking for the same name at once cost one query.
//
// # Lookups
//
// [Resolver.LookupNetIP] turns a host into addresses, in this order:
//
//  1. An IP literal ("192.0.2.1", "2001:db8::1", "fe80::1%eth0") is
//     returned as it is; nothing is asked.
//  2. The name is made canonical (lower case, no trailing dot) and checked:
//     letters, digits, '-' and '_' in labels of 1 to 63 bytes, at most 253
//     bytes in all. Other names fail with [ErrInvalidName]. Names are not
//     converted from Unicode: callers pass the ASCII (punycode) form.
//  3. "localhost" and names under ".localhost" are the loopback addresses
//     127.0.0.1 and ::1 (RFC 6761, section 6.3).
//  4. A name listed in the hosts file (/etc/hosts unless configured
//     otherwise) gets the addresses listed there. The file is checked for
//     changes at most every [HostsRecheckInterval].
//  5. Otherwise the cache is asked, per address family, and what it does
//     not hold is asked of the [Backend]: A and AAAA in parallel. IPv4
//     addresses come first in the result, then IPv6 ones.
//
// Names are always treated as fully qualified: the search list and "ndots"
// of /etc/resolv.conf are not applied, so a client of the proxy cannot
// reach "intranet.corp.example" by asking for "intranet".
//
// # Backends
//
// A [Backend] answers one question: the addresses of one name in one
// family. Three are provided:
//
//   - [DNSClient] speaks DNS over UDP to configured nameservers (by default
//     those in /etc/resolv.conf) and retries over TCP when an answer comes
//     back truncated.
//   - [DoH] speaks DNS over HTTPS (RFC 8484) to one URL.
//   - [System] asks Go's net.Resolver, which also knows /etc/nsswitch.conf
//     and the C library's resolver; it cannot see TTLs.
//
// # Cache
//
// Each name has one cache entry holding its IPv4 and IPv6 results with
// their own expiry. A positive answer is kept for the smallest TTL among
// the records used (the address records and any CNAME leading to them),
// clamped to [MinTTL, MaxTTL]. A name that does not exist (NXDOMAIN) or has
// no address of a family (NODATA) is kept for the negative TTL of RFC 2308:
// the smaller of the SOA record's TTL and its MINIMUM field, or
// [DefaultNegativeTTL] when the answer carries no SOA, clamped to [MinTTL,
// MaxNegativeTTL]. A lookup that failed (timeout, SERVFAIL, network error)
// is kept for [DefaultFailureTTL] so a dead nameserver is not hammered
// (RFC 9520 asks resolvers to remember failures for at least a second).
// The cache holds at most [DefaultMaxEntries] names and forgets the least
// recently used one first.
//
// Concurrent lookups of the same name and family share one query: the first
// starts it, the others wait for its result. The query runs under its own
// timeout ([DefaultLookupTimeout]), not the first caller's context, so a
// client that goes away does not fail the lookup for everyone else; each
// caller still stops waiting when its own context ends.
//
// # Errors
//
// Lookup errors are [*LookupError] values naming the host. Use errors.Is
// with [ErrNotFound] (the name does not exist or has no addresses: a proxy
// answers "host unreachable"), [ErrTimeout], [ErrServerFailure] and
// [ErrInvalidName].
package resolver
