package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// System is a [Backend] that asks Go's net.Resolver: the same path as
// net.Dial, which honours /etc/nsswitch.conf, /etc/hosts and, with cgo,
// the C library's resolver. It cannot see TTLs, so every answer carries
// TTLUnknown and the Resolver caches it for its Config.UnknownTTL (or
// Config.NegativeTTL for "not found"). It also cannot tell a name that
// does not exist from one without addresses of a family; both are NODATA
// answers, which the Resolver reports as ErrNotFound when neither family
// has an address.
type System struct {
	// Resolver is the resolver asked; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Query asks the system resolver for the addresses of name in family f.
// The name is passed with a trailing dot so that no search domain is
// appended to it.
func (s *System) Query(ctx context.Context, name string, f Family) (Answer, error) {
	r := s.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	network := "ip4"
	if f == IPv6 {
		network = "ip6"
	}
	addrs, err := r.LookupNetIP(ctx, network, name+".")
	if err != nil {
		var de *net.DNSError
		switch {
		case errors.As(err, &de) && de.IsNotFound:
			return Answer{TTL: TTLUnknown}, nil
		case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			return Answer{}, fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return Answer{}, err
	}
	return Answer{Addrs: keepFamily(addrs, f), TTL: TTLUnknown}, nil
}
