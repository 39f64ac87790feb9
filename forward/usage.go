package forward

import (
	"sync"
	"sync/atomic"
)

// Usage is what one user did through the proxy since the server started.
// BytesIn counts bytes from the client toward destinations (request
// bodies, tunnel and datagram payloads), BytesOut bytes from destinations
// back to the client.
type Usage struct {
	Requests     int64 // HTTP requests forwarded (absolute-form)
	Tunnels      int64 // CONNECT and SOCKS5 CONNECT tunnels opened
	Associations int64 // SOCKS5 UDP associations and MASQUE (CONNECT-UDP) flows
	BytesIn      int64
	BytesOut     int64
}

type kind uint8

const (
	kindHTTP kind = iota
	kindConnect
	kindSOCKS
	kindUDP
	kindMASQUE
)

func (k kind) String() string {
	return [...]string{"http", "connect", "socks5", "socks5-udp", "masque"}[k]
}

// usageTable counts per user. Only authenticated users get their own
// entry, so its size is bounded by the users file; everything else
// (a server without authentication) counts under "".
type usageTable struct {
	m sync.Map // string → *usageCounters
}

type usageCounters struct {
	requests, tunnels, assocs, in, out atomic.Int64
}

func (t *usageTable) add(id identity, k kind, in, out int64) {
	key := ""
	if id.authed {
		key = id.user
	}
	v, ok := t.m.Load(key)
	if !ok {
		v, _ = t.m.LoadOrStore(key, &usageCounters{})
	}
	c := v.(*usageCounters)
	switch k {
	case kindHTTP:
		c.requests.Add(1)
	case kindConnect, kindSOCKS:
		c.tunnels.Add(1)
	case kindUDP, kindMASQUE:
		c.assocs.Add(1)
	}
	c.in.Add(in)
	c.out.Add(out)
}

// Usage returns the counters of every user that used the proxy, keyed by
// user name; "" holds what unauthenticated clients did. Counts are added
// when a request, tunnel or association ends.
func (s *Server) Usage() map[string]Usage {
	out := map[string]Usage{}
	s.usage.m.Range(func(k, v any) bool {
		c := v.(*usageCounters)
		out[k.(string)] = Usage{
			Requests: c.requests.Load(), Tunnels: c.tunnels.Load(), Associations: c.assocs.Load(),
			BytesIn: c.in.Load(), BytesOut: c.out.Load(),
		}
		return true
	})
	return out
}
