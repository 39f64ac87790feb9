package forward

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bucket sizes of UserLimits.BytesPerSecond: a user's bucket holds
// rateBurstTime of traffic, and never less than minRateBurst, which also
// lets one largest UDP datagram through.
const (
	rateBurstTime = 100 * time.Millisecond
	minRateBurst  = 64 << 10
)

// errUserConns is the refusal of a use past UserLimits.MaxConns.
var errUserConns = errors.New("too many concurrent connections for this user")

// errRateLimited marks a datagram dropped for a user over its rate.
var errRateLimited = errors.New("user over its bandwidth limit")

// userTable holds the live state of UserLimits: each user's count of
// uses in progress and token buckets. An entry is forgotten when the
// user has nothing in progress and its buckets are full again, so that
// forgetting it changes nothing; the table is swept when it has doubled
// since the last sweep.
type userTable struct {
	lim   UserLimits
	burst int

	mu        sync.Mutex
	m         map[string]*userState
	nextSweep int
}

// userState is one user's share of the limits. A nil *userState means
// no limit applies.
type userState struct {
	t      *userTable
	key    string
	active int           // uses in progress; guarded by t.mu
	in     *rate.Limiter // client → destination; nil without a rate
	out    *rate.Limiter // destination → client
}

const minSweep = 1024

func newUserTable(lim UserLimits) *userTable {
	t := &userTable{lim: lim, m: map[string]*userState{}, nextSweep: minSweep}
	if lim.BytesPerSecond > 0 {
		b := lim.BytesPerSecond * int64(rateBurstTime) / int64(time.Second)
		t.burst = int(min(max(b, minRateBurst), 1<<30))
	}
	return t
}

// enabled reports whether any limit is set.
func (t *userTable) enabled() bool {
	return t.lim.MaxConns > 0 || t.lim.BytesPerSecond > 0
}

// userKey names the user limits are counted for: the authenticated user,
// or the client's address when nobody authenticates.
func userKey(id identity, client netip.Addr) string {
	if id.authed {
		return "u:" + id.user
	}
	return "ip:" + client.Unmap().WithZone("").String()
}

// acquire counts one more use for key. It returns the user's state (nil
// when no limit is set) and false when the use is over MaxConns.
func (t *userTable) acquire(key string) (*userState, bool) {
	if !t.enabled() {
		return nil, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.m[key]
	if u == nil {
		if len(t.m) >= t.nextSweep {
			t.sweepLocked(time.Now())
			t.nextSweep = max(2*len(t.m), minSweep)
		}
		u = &userState{t: t, key: key}
		if t.lim.BytesPerSecond > 0 {
			r := rate.Limit(t.lim.BytesPerSecond)
			u.in = rate.NewLimiter(r, t.burst)
			u.out = rate.NewLimiter(r, t.burst)
		}
		t.m[key] = u
	}
	if t.lim.MaxConns > 0 && u.active >= t.lim.MaxConns {
		return u, false
	}
	u.active++
	return u, true
}

// release ends one use acquire counted.
func (u *userState) release() {
	if u == nil {
		return
	}
	t := u.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.active > 0 {
		u.active--
	}
	if u.active == 0 && u.in == nil && t.m[u.key] == u {
		delete(t.m, u.key)
	}
}

// sweepLocked forgets users with nothing in progress whose buckets are
// full.
func (t *userTable) sweepLocked(now time.Time) {
	for k, u := range t.m {
		if u.active == 0 && (u.in == nil || (u.in.TokensAt(now) >= float64(t.burst) && u.out.TokensAt(now) >= float64(t.burst))) {
			delete(t.m, k)
		}
	}
}

// size returns how many users are remembered.
func (t *userTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// limiter returns the bucket of one direction: toward destinations when
// up is set, back toward the client otherwise. Nil means no rate.
func (u *userState) limiter(up bool) *rate.Limiter {
	if u == nil {
		return nil
	}
	if up {
		return u.in
	}
	return u.out
}

// waitN takes n bytes from l, waiting for them; nil l takes nothing. It
// fails only when ctx ends first.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// allowN takes n bytes from l if it holds them now; nil l always allows.
func allowN(l *rate.Limiter, n int) bool {
	return l == nil || l.AllowN(time.Now(), n)
}
