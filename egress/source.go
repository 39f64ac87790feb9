package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source pool modes, the values of SourceConfig.Mode.
const (
	// ModeRoundRobin gives each connection the next address in turn.
	ModeRoundRobin = "round_robin"
	// ModeByUser gives each user one fixed address, chosen by a hash of the
	// user name.
	ModeByUser = "by_user"
	// ModeSticky gives each (user, session) pair one address for as long as
	// the pair keeps being used.
	ModeSticky = "sticky"
)

// Source pool defaults.
const (
	// DefaultStickyTTL is how long a sticky session keeps its address
	// without being used.
	DefaultStickyTTL = 10 * time.Minute
	// DefaultMaxSessions bounds the sticky session table; past it the
	// least recently used session is forgotten.
	DefaultMaxSessions = 100000
)

// SessionMarker separates the user from the session id in a proxy user
// name: "alice-session-abc123" is user "alice", session "abc123". See
// SplitSession.
const SessionMarker = "-session-"

// SourceConfig describes a SourcePool.
type SourceConfig struct {
	// Addrs are the local addresses outbound connections may be bound to.
	// At least one is required. They must be assigned to the host (on
	// Linux every address of 127.0.0.0/8 is, on lo).
	Addrs []netip.Addr
	// Mode is ModeRoundRobin (the default when empty), ModeByUser or
	// ModeSticky.
	Mode string
	// StickyTTL is how long an unused sticky session keeps its address;
	// 0 means DefaultStickyTTL. Only for ModeSticky.
	StickyTTL time.Duration
	// MaxSessions bounds the sticky session table; 0 means
	// DefaultMaxSessions. Only for ModeSticky.
	MaxSessions int
}

type sourceMode uint8

const (
	roundRobin sourceMode = iota
	byUser
	sticky
)

// SourcePool picks the source address of outbound connections, so that a
// proxy network can spread its clients over many egress addresses. Build
// one with NewSourcePool; it is safe for concurrent use. Round robin and
// by-user picks take no lock; a sticky pick takes one short lock.
type SourcePool struct {
	addrs []netip.Addr
	mode  sourceMode
	ttl   time.Duration
	max   int
	next  atomic.Uint64
	now   func() time.Time // the clock; tests replace it

	mu       sync.Mutex
	sessions map[sessionKey]*session
	// The sessions form a list from the most recently used (newest) to the
	// least recently used (oldest); eviction and expiry take from oldest.
	newest, oldest *session
}

type sessionKey struct{ user, session string }

type session struct {
	key          sessionKey
	addr         netip.Addr
	lastUsed     time.Time
	newer, older *session
}

// NewSourcePool checks cfg and builds its pool. It fails when there is no
// address, an address is invalid or the mode is unknown.
func NewSourcePool(cfg SourceConfig) (*SourcePool, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("egress: source pool has no addresses")
	}
	p := &SourcePool{
		addrs: make([]netip.Addr, len(cfg.Addrs)),
		ttl:   cfg.StickyTTL,
		max:   cfg.MaxSessions,
		now:   time.Now,
	}
	for i, a := range cfg.Addrs {
		if !a.IsValid() || a.Unmap().IsUnspecified() {
			return nil, fmt.Errorf("egress: source pool: invalid address %q", a.String())
		}
		p.addrs[i] = a.Unmap()
	}
	switch cfg.Mode {
	case "", ModeRoundRobin:
		p.mode = roundRobin
	case ModeByUser:
		p.mode = byUser
	case ModeSticky:
		p.mode = sticky
	default:
		return nil, fmt.Errorf("egress: source pool: unknown mode %q (want %s, %s or %s)",
			cfg.Mode, ModeRoundRobin, ModeByUser, ModeSticky)
	}
	if p.ttl <= 0 {
		p.ttl = DefaultStickyTTL
	}
	if p.max <= 0 {
		p.max = DefaultMaxSessions
	}
	if p.mode == sticky {
		p.sessions = make(map[sessionKey]*session)
	}
	return p, nil
}

// Pick returns the source address for a new connection of user in session
// (session may be empty; SplitSession extracts both from a proxy user
// name).
//
//   - round_robin ignores both and cycles through the addresses.
//   - by_user maps user to one address, the same every time and across
//     restarts (a jump consistent hash of the name: appending addresses to
//     the pool moves only the users the new addresses take over).
//   - sticky gives a new (user, session) pair the next address in turn and
//     the same address to every later Pick of that pair, until StickyTTL
//     passes without one; then the pair may get a different address. An
//     empty session is a session like any other: all of a user's
//     session-less connections share one address. When the table holds
//     MaxSessions pairs, the least recently used pair is forgotten.
//
// A nil pool returns the zero Addr, which DialOptions.LocalAddr reads as
// "let the kernel choose".
func (p *SourcePool) Pick(user, session string) netip.Addr {
	if p == nil {
		return netip.Addr{}
	}
	if len(p.addrs) == 1 {
		return p.addrs[0]
	}
	switch p.mode {
	case byUser:
		return p.addrs[jumpHash(hashString(user), len(p.addrs))]
	case sticky:
		return p.pickSticky(user, session)
	}
	return p.roundRobin()
}

func (p *SourcePool) roundRobin() netip.Addr {
	n := p.next.Add(1) - 1
	return p.addrs[n%uint64(len(p.addrs))]
}

func (p *SourcePool) pickSticky(user, sess string) netip.Addr {
	now := p.now()
	k := sessionKey{user, sess}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if s, ok := p.sessions[k]; ok {
		s.lastUsed = now
		p.unlink(s)
		p.pushNewest(s)
		return s.addr
	}
	if len(p.sessions) >= p.max {
		s := p.oldest
		p.unlink(s)
		delete(p.sessions, s.key)
	}
	s := &session{
		key:      sessionKey{strings.Clone(user), strings.Clone(sess)},
		addr:     p.roundRobin(),
		lastUsed: now,
	}
	p.sessions[s.key] = s
	p.pushNewest(s)
	return s.addr
}

// expire forgets the sessions unused for StickyTTL or longer. They sit at
// the old end of the list, so this costs one comparison when none is due.
func (p *SourcePool) expire(now time.Time) {
	for s := p.oldest; s != nil && now.Sub(s.lastUsed) >= p.ttl; s = p.oldest {
		p.unlink(s)
		delete(p.sessions, s.key)
	}
}

func (p *SourcePool) unlink(s *session) {
	if s.newer != nil {
		s.newer.older = s.older
	} else {
		p.newest = s.older
	}
	if s.older != nil {
		s.older.newer = s.newer
	} else {
		p.oldest = s.newer
	}
	s.newer, s.older = nil, nil
}

func (p *SourcePool) pushNewest(s *session) {
	s.older = p.newest
	if p.newest != nil {
		p.newest.newer = s
	} else {
		p.oldest = s
	}
	p.newest = s
}

// Sessions returns how many sticky sessions the pool remembers (always 0
// outside ModeSticky). Expired sessions are counted until the next Pick.
func (p *SourcePool) Sessions() int {
	if p == nil || p.mode != sticky {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// hashString is 64-bit FNV-1a: stable across runs and builds, so that a
// by_user address survives a restart.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// jumpHash maps key to one of n buckets such that growing n to n+1 moves
// only about 1/(n+1) of the keys, all of them to the new bucket (the jump
// consistent hash of Lamping and Veach).
func jumpHash(key uint64, n int) int {
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// SplitSession splits a proxy user name of the form
// "<user>-session-<id>" into the user and the session id:
// "alice-session-abc123" gives ("alice", "abc123"). The last "-session-"
// is the separator, so a user name may itself contain the marker
// ("bob-session-x-session-7" gives ("bob-session-x", "7")). A name without
// the marker is returned whole with an empty session. Authenticate the
// user part; the session id only selects a sticky source address.
func SplitSession(username string) (user, session string) {
	i := strings.LastIndex(username, SessionMarker)
	if i < 0 {
		return username, ""
	}
	return username[:i], username[i+len(SessionMarker):]
}
