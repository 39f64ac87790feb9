package egress

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func mustPool(t *testing.T, cfg SourceConfig) *SourcePool {
	t.Helper()
	p, err := NewSourcePool(cfg)
	if err != nil {
		t.Fatalf("NewSourcePool: %v", err)
	}
	return p
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestNewSourcePoolErrors(t *testing.T) {
	for i, cfg := range []SourceConfig{
		{},
		{Addrs: []netip.Addr{{}}},
		{Addrs: addrs("0.0.0.0")},
		{Addrs: addrs("127.0.0.2"), Mode: "random"},
	} {
		if _, err := NewSourcePool(cfg); err == nil {
			t.Errorf("case %d: NewSourcePool(%+v) succeeded", i, cfg)
		}
	}
}

func TestSourceRoundRobin(t *testing.T) {
	p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3", "::ffff:127.0.0.4")})
	want := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2", "127.0.0.3"}
	for i, w := range want {
		if got := p.Pick("alice", "s"); got.String() != w {
			t.Errorf("pick %d = %v, want %v", i, got, w)
		}
	}
	var nilPool *SourcePool
	if a := nilPool.Pick("alice", ""); a.IsValid() || nilPool.Sessions() != 0 {
		t.Errorf("nil pool picked %v", a)
	}
	one := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.5"), Mode: ModeSticky})
	if a := one.Pick("a", "b"); a.String() != "127.0.0.5" {
		t.Errorf("single-address pool picked %v", a)
	}
}

func TestSourceByUser(t *testing.T) {
	list := addrs("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	p := mustPool(t, SourceConfig{Addrs: list, Mode: ModeByUser})
	again := mustPool(t, SourceConfig{Addrs: list, Mode: ModeByUser})
	used := map[netip.Addr]int{}
	for i := 0; i < 1000; i++ {
		user := fmt.Sprintf("user%d", i)
		a := p.Pick(user, "x")
		if b := p.Pick(user, "other"); a != b {
			t.Fatalf("%s got %v then %v", user, a, b)
		}
		if b := again.Pick(user, ""); a != b {
			t.Fatalf("%s got %v from one pool and %v from an identical one", user, a, b)
		}
		used[a]++
	}
	for _, a := range list {
		if used[a] < 150 {
			t.Errorf("address %v got %d of 1000 users: %v", a, used[a], used)
		}
	}
	// Appending an address moves users only onto the new address.
	grown := mustPool(t, SourceConfig{Addrs: append(append([]netip.Addr(nil), list...), netip.MustParseAddr("127.0.0.6")), Mode: ModeByUser})
	moved := 0
	for i := 0; i < 1000; i++ {
		user := fmt.Sprintf("user%d", i)
		before, after := p.Pick(user, ""), grown.Pick(user, "")
		if before != after {
			moved++
			if after.String() != "127.0.0.6" {
				t.Fatalf("%s moved from %v to %v", user, before, after)
			}
		}
	}
	if moved < 100 || moved > 300 {
		t.Errorf("%d of 1000 users moved to the fifth address, want about 200", moved)
	}
}

func TestSourceSticky(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3"), Mode: ModeSticky, StickyTTL: time.Minute})
	p.now = clock.now
	a2, a3 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")

	if got := p.Pick("alice", "s1"); got != a2 {
		t.Fatalf("first session got %v", got)
	}
	if got := p.Pick("alice", "s2"); got != a3 {
		t.Fatalf("second session got %v", got)
	}
	// Each use within the TTL keeps the address and restarts the TTL.
	for i := 0; i < 5; i++ {
		clock.advance(50 * time.Second)
		if got := p.Pick("alice", "s1"); got != a2 {
			t.Fatalf("s1 after %d uses got %v", i, got)
		}
	}
	if p.Sessions() != 1 {
		t.Errorf("s2 unused for 250s still remembered: %d sessions", p.Sessions())
	}
	// A session unused for a whole TTL is forgotten and starts afresh: the
	// next address in turn (after 127.0.0.2 and 127.0.0.3, 127.0.0.2).
	clock.advance(time.Minute)
	if got := p.Pick("bob", ""); got != a2 {
		t.Fatalf("bob got %v", got)
	}
	if p.Sessions() != 1 {
		t.Errorf("sessions = %d after expiry, want only bob", p.Sessions())
	}
	if got := p.Pick("alice", "s1"); got != a3 {
		t.Errorf("expired s1 got %v, want the next address %v", got, a3)
	}
	// The empty session is a session of its own.
	if got := p.Pick("bob", ""); got != a2 {
		t.Errorf("bob's session-less connections moved to %v", got)
	}
}

func TestSourceStickyBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3"), Mode: ModeSticky, MaxSessions: 2})
	p.now = clock.now
	a2, a3 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	pick := func(sess string, want netip.Addr) {
		t.Helper()
		clock.advance(time.Second)
		if got := p.Pick("u", sess); got != want {
			t.Fatalf("session %s got %v, want %v", sess, got, want)
		}
	}
	pick("a", a2)
	pick("b", a3)
	pick("a", a2) // a is now the most recently used; b the oldest
	pick("c", a2) // evicts b
	if p.Sessions() != 2 {
		t.Fatalf("sessions = %d, want 2", p.Sessions())
	}
	pick("a", a2) // kept
	pick("b", a3) // new again (next in turn), evicts c
	pick("c", a2) // new again, evicts a
	pick("a", a3) // a was evicted: it starts afresh
}

func TestSourceStickyDefaults(t *testing.T) {
	p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3"), Mode: ModeSticky})
	if p.ttl != DefaultStickyTTL || p.max != DefaultMaxSessions {
		t.Errorf("ttl %v, max %d", p.ttl, p.max)
	}
}

func TestSourceConcurrent(t *testing.T) {
	for _, mode := range []string{ModeRoundRobin, ModeByUser, ModeSticky} {
		p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3", "127.0.0.4"), Mode: mode, MaxSessions: 50})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					user := fmt.Sprintf("u%d", (g*7+i)%13)
					sess := fmt.Sprintf("s%d", i%97)
					if a := p.Pick(user, sess); !a.IsValid() {
						t.Errorf("%s: invalid pick", mode)
						return
					}
				}
			}()
		}
		wg.Wait()
		if n := p.Sessions(); n > 50 {
			t.Errorf("%s: %d sessions, bound is 50", mode, n)
		}
	}
}

// The address a listener sees is the one the pool picked.
func TestSourceBindsPickedAddress(t *testing.T) {
	target, seen := listen(t, "tcp4", "127.0.0.1:0")
	d := &Dialer{Policy: loopbackPolicy(t), Resolver: &fakeResolver{}}
	loopbackOnly(t, d, nil)
	for _, mode := range []string{ModeRoundRobin, ModeByUser, ModeSticky} {
		p := mustPool(t, SourceConfig{Addrs: addrs("127.0.0.2", "127.0.0.3"), Mode: mode})
		for i := 0; i < 4; i++ {
			user, sess := SplitSession(fmt.Sprintf("user%d-session-%d", i, i%2))
			local := p.Pick(user, sess)
			c, _, err := d.DialContext(context.Background(), "tcp", target.String(), DialOptions{LocalAddr: local})
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			remote := <-seen
			c.Close()
			if remote.Addr() != local {
				t.Errorf("%s: listener saw %v, pool picked %v", mode, remote.Addr(), local)
			}
		}
	}
}

func TestSplitSession(t *testing.T) {
	cases := []struct{ in, user, session string }{
		{"alice-session-abc123", "alice", "abc123"},
		{"alice", "alice", ""},
		{"alice-sessionabc", "alice-sessionabc", ""},
		{"bob-session-x-session-7", "bob-session-x", "7"},
		{"carol-session-", "carol", ""},
		{"-session-42", "", "42"},
		{"", "", ""},
	}
	for _, c := range cases {
		u, s := SplitSession(c.in)
		if u != c.user || s != c.session {
			t.Errorf("SplitSession(%q) = %q, %q; want %q, %q", c.in, u, s, c.user, c.session)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	list := addrs("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	for _, mode := range []string{ModeRoundRobin, ModeByUser, ModeSticky} {
		p, _ := NewSourcePool(SourceConfig{Addrs: list, Mode: mode})
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Pick("alice", "abc123")
			}
		})
	}
}
