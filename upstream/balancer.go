package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
)

// Balancer picks a peer for one request. Implementations are safe for
// concurrent use and allocation-free per Pick.
type Balancer interface {
	// Pick returns an available peer whose Index bit is not set in tried,
	// or nil when there is none. key is the hash of the request's hash_on
	// value (see HashKey); only consistent_hash uses it. tried is the set
	// of Peer.Index values already tried for this request.
	Pick(key uint64, tried uint64) *Peer
}

// MaxPeers is the largest number of peers in one group: Pick's tried mask
// has one bit per peer.
const MaxPeers = 64

// maxWeight bounds Peer.Weight so that weight arithmetic cannot overflow.
const maxWeight = 1 << 20

// Balancer names, as written in the configuration.
const (
	RoundRobin         = "round_robin"
	WeightedRoundRobin = "weighted_round_robin"
	LeastConn          = "least_conn"
	P2C                = "p2c"
	ConsistentHash     = "consistent_hash"
)

var balancerNames = []string{RoundRobin, WeightedRoundRobin, LeastConn, P2C, ConsistentHash}

// BalancerNames returns the valid balancer names.
func BalancerNames() []string { return append([]string(nil), balancerNames...) }

// NewBalancer returns the balancer called name over peers. The empty name
// means round_robin. Peers must number 1 to MaxPeers, each with a distinct
// Index in [0, MaxPeers) and a Weight in [1, 2^20]. The balancer keeps its
// own copy of the slice; the peers themselves carry the mutable state
// (availability, in-flight count).
func NewBalancer(name string, peers []*Peer) (Balancer, error) {
	if err := checkPeers(peers); err != nil {
		return nil, err
	}
	ps := append([]*Peer(nil), peers...)
	switch name {
	case RoundRobin, "":
		return &roundRobin{peers: ps}, nil
	case WeightedRoundRobin:
		return newWeightedRoundRobin(ps), nil
	case LeastConn:
		return &leastConn{peers: ps}, nil
	case P2C:
		return newP2C(ps), nil
	case ConsistentHash:
		return newMaglev(ps), nil
	}
	return nil, fmt.Errorf("upstream: unknown balancer %q (valid: %s)", name, strings.Join(balancerNames, ", "))
}

func checkPeers(peers []*Peer) error {
	if len(peers) == 0 {
		return errors.New("upstream: balancer needs at least one peer")
	}
	if len(peers) > MaxPeers {
		return fmt.Errorf("upstream: %d peers in one group, at most %d allowed", len(peers), MaxPeers)
	}
	var seen uint64
	for i, p := range peers {
		if p == nil {
			return fmt.Errorf("upstream: peer %d is nil", i)
		}
		if p.Index < 0 || p.Index >= MaxPeers {
			return fmt.Errorf("upstream: peer %s: index %d out of range [0, %d)", p.Addr, p.Index, MaxPeers)
		}
		if seen&(1<<p.Index) != 0 {
			return fmt.Errorf("upstream: peer %s: index %d used twice", p.Addr, p.Index)
		}
		seen |= 1 << p.Index
		if p.Weight < 1 || p.Weight > maxWeight {
			return fmt.Errorf("upstream: peer %s: weight %d out of range [1, %d]", p.Addr, p.Weight, maxWeight)
		}
	}
	return nil
}

// eligible reports whether p may be picked for a request that has already
// tried the peers in tried.
func eligible(p *Peer, tried uint64) bool {
	return tried&(1<<uint(p.Index)) == 0 && p.Available()
}

// turn returns the next value of a rotating counter modulo n. It divides
// in 32 bits, which is cheaper; the one irregular step when the low 32
// bits wrap does not matter.
func turn(c *atomic.Uint64, n int) int {
	return int(uint32(c.Add(1)-1) % uint32(n))
}

// pad keeps a hot atomic counter on its own cache line, away from the
// read-only fields that every Pick loads.
type pad [64]byte

// --- round_robin ---

// roundRobin hands out peers in turn, skipping unavailable and tried ones.
type roundRobin struct {
	peers []*Peer
	_     pad
	next  atomic.Uint64
	_     pad
}

var _ Balancer = (*roundRobin)(nil)

func (b *roundRobin) Pick(_, tried uint64) *Peer {
	n := len(b.peers)
	i := turn(&b.next, n)
	for range n {
		if p := b.peers[i]; eligible(p, tried) {
			return p
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

// --- weighted_round_robin ---

// maxSchedule bounds the precomputed weighted schedule (one byte per slot).
const maxSchedule = 1 << 14

// weightedRoundRobin is nginx's smooth weighted round robin. While every
// peer is available, picks follow a schedule precomputed with that
// algorithm and indexed by an atomic counter, so the common case takes no
// lock. When the scheduled peer is unavailable or already tried, the pick
// falls back to running the algorithm live, under a mutex, over the
// eligible peers only; this hands the missing peer's share to the others
// in proportion to their weights.
type weightedRoundRobin struct {
	peers []*Peer
	sched []uint8 // peer positions; nil when the schedule would be too long
	_     pad
	next  atomic.Uint64
	_     pad
	mu    sync.Mutex
	cur   []int64 // current weights of the live algorithm, guarded by mu
}

var _ Balancer = (*weightedRoundRobin)(nil)

func newWeightedRoundRobin(peers []*Peer) *weightedRoundRobin {
	b := &weightedRoundRobin{peers: peers, cur: make([]int64, len(peers))}
	// Divide weights by their GCD: 300:100 schedules like 3:1.
	g := 0
	total := 0
	for _, p := range peers {
		g = gcd(g, p.Weight)
	}
	w := make([]int64, len(peers))
	for i, p := range peers {
		w[i] = int64(p.Weight / g)
		total += p.Weight / g
	}
	if total > maxSchedule {
		return b
	}
	b.sched = make([]uint8, total)
	cur := make([]int64, len(peers))
	for s := range b.sched {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		b.sched[s] = uint8(best)
	}
	return b
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (b *weightedRoundRobin) Pick(_, tried uint64) *Peer {
	if b.sched != nil {
		p := b.peers[b.sched[turn(&b.next, len(b.sched))]]
		if eligible(p, tried) {
			return p
		}
	}
	return b.pickSmooth(tried)
}

// pickSmooth runs one step of smooth weighted round robin over the
// eligible peers.
func (b *weightedRoundRobin) pickSmooth(tried uint64) *Peer {
	b.mu.Lock()
	best := -1
	var total int64
	for i, p := range b.peers {
		if !eligible(p, tried) {
			continue
		}
		w := int64(p.Weight)
		b.cur[i] += w
		total += w
		if best < 0 || b.cur[i] > b.cur[best] {
			best = i
		}
	}
	if best < 0 {
		b.mu.Unlock()
		return nil
	}
	b.cur[best] -= total
	b.mu.Unlock()
	return b.peers[best]
}

// --- least_conn ---

// leastConn picks the eligible peer with the fewest requests in flight per
// unit of weight. The scan starts at a rotating position so that ties
// (typically: several idle peers) are shared round-robin rather than all
// going to the first peer.
type leastConn struct {
	peers []*Peer
	_     pad
	next  atomic.Uint64
	_     pad
}

var _ Balancer = (*leastConn)(nil)

func (b *leastConn) Pick(_, tried uint64) *Peer {
	n := len(b.peers)
	i := turn(&b.next, n)
	var best *Peer
	var bestLoad, bestWeight int64
	for range n {
		p := b.peers[i]
		if i++; i == n {
			i = 0
		}
		if !eligible(p, tried) {
			continue
		}
		load, w := p.Inflight(), int64(p.Weight)
		// load/w < bestLoad/bestWeight, without division.
		if best == nil || load*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = p, load, w
		}
	}
	return best
}

// --- p2c ---

// p2c is the power of two random choices: sample two peers (in proportion
// to their weights) and take the one with fewer requests in flight per
// unit of weight. When a sampled peer is not eligible the next eligible
// one after it stands in for it.
type p2c struct {
	peers []*Peer
	// cum holds cumulative weights (cum[i] = w0+…+wi); nil when all
	// weights are equal and sampling is uniform.
	cum   []uint64
	total uint64
}

var _ Balancer = (*p2c)(nil)

func newP2C(peers []*Peer) *p2c {
	b := &p2c{peers: peers}
	uniform := true
	for _, p := range peers {
		uniform = uniform && p.Weight == peers[0].Weight
	}
	if !uniform {
		b.cum = make([]uint64, len(peers))
		for i, p := range peers {
			b.total += uint64(p.Weight)
			b.cum[i] = b.total
		}
	}
	return b
}

// sample maps a random number to a peer position.
func (b *p2c) sample(r uint64) int {
	if b.cum == nil {
		hi, _ := bits.Mul64(r, uint64(len(b.peers)))
		return int(hi)
	}
	x, _ := bits.Mul64(r, b.total) // uniform in [0, total)
	// The first position whose cumulative weight exceeds x.
	lo, hi := 0, len(b.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// firstEligible returns the first eligible position at or after start
// (wrapping), skipping skip, or -1.
func (b *p2c) firstEligible(start, skip int, tried uint64) int {
	n := len(b.peers)
	i := start
	for range n {
		if i != skip && eligible(b.peers[i], tried) {
			return i
		}
		if i++; i == n {
			i = 0
		}
	}
	return -1
}

func (b *p2c) Pick(_, tried uint64) *Peer {
	if len(b.peers) == 1 {
		if p := b.peers[0]; eligible(p, tried) {
			return p
		}
		return nil
	}
	a := b.firstEligible(b.sample(rand.Uint64()), -1, tried)
	if a < 0 {
		return nil
	}
	c := b.sample(rand.Uint64())
	if c == a {
		// Sampled the same peer twice: take the next one instead, so the
		// two choices are distinct.
		if c++; c == len(b.peers) {
			c = 0
		}
	}
	c = b.firstEligible(c, a, tried)
	pa := b.peers[a]
	if c < 0 {
		return pa
	}
	pc := b.peers[c]
	if pc.Inflight()*int64(pa.Weight) < pa.Inflight()*int64(pc.Weight) {
		return pc
	}
	return pa
}

// --- consistent_hash ---

// maglevSize is the Maglev lookup table size: a prime at least 100 times
// MaxPeers, so that each peer's share is within about 1% of its weight.
const maglevSize = 65537

// maglevWalk bounds the search for a fallback entry in the table before
// maglev falls back to choosing among the eligible peers directly.
const maglevWalk = 256

// maglev is consistent hashing with Google's Maglev lookup table (NSDI
// 2016), weighted: each peer claims table entries in turns, and a peer
// takes a turn once per maxWeight/weight rounds. A key maps to
// table[key mod size]. Rebuilding the table without one of N peers moves
// little more than the 1/N of keys that peer held.
//
// When a key's peer is unavailable or already tried, the key falls to the
// next entry of the table that names an eligible peer. That choice is
// deterministic (retries and other Weir instances agree on it) and
// spreads the missing peer's keys over the others in proportion to their
// shares; keys of other peers do not move at all.
type maglev struct {
	peers []*Peer
	table []uint8 // peer positions
}

var _ Balancer = (*maglev)(nil)

func newMaglev(peers []*Peer) *maglev {
	n := len(peers)
	const m = maglevSize
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	credit := make([]int, n)
	maxW := 0
	for i, p := range peers {
		// Seed by address, not position, so a peer keeps its preferences
		// when others are added or removed. Repeated addresses get
		// distinct permutations.
		dup := uint64(0)
		for _, q := range peers[:i] {
			if q.Addr == p.Addr {
				dup++
			}
		}
		addr := []byte(p.Addr)
		offset[i] = hashSeed(addr, 0x6d61676c65760001+dup) % m
		skip[i] = hashSeed(addr, 0x6d61676c65760002+dup)%(m-1) + 1
		maxW = max(maxW, p.Weight)
	}
	const empty = 0xff
	table := make([]uint8, m)
	for i := range table {
		table[i] = empty
	}
	for filled := 0; filled < m; {
		for i, p := range peers {
			credit[i] += p.Weight
			if credit[i] < maxW {
				continue
			}
			credit[i] -= maxW
			c := (offset[i] + next[i]*skip[i]) % m
			for table[c] != empty {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % m
			}
			table[c] = uint8(i)
			next[i]++
			if filled++; filled == m {
				break
			}
		}
	}
	return &maglev{peers: peers, table: table}
}

func (b *maglev) Pick(key, tried uint64) *Peer {
	slot := key % maglevSize
	if p := b.peers[b.table[slot]]; eligible(p, tried) {
		return p
	}
	var mask uint64 // eligible positions
	for i, p := range b.peers {
		if eligible(p, tried) {
			mask |= 1 << uint(i)
		}
	}
	if mask == 0 {
		return nil
	}
	for range maglevWalk {
		if slot++; slot == maglevSize {
			slot = 0
		}
		if i := b.table[slot]; mask&(1<<i) != 0 {
			return b.peers[i]
		}
	}
	// Only peers with tiny shares are left: choose among them by key.
	k := int(key % uint64(bits.OnesCount64(mask)))
	for range k {
		mask &= mask - 1
	}
	return b.peers[bits.TrailingZeros64(mask)]
}

// --- hashing ---

const (
	prime1 = 0x9E3779B185EBCA87
	prime2 = 0xC2B2AE3D27D4EB4F
	prime3 = 0x165667B19E3779F9
	prime4 = 0x85EBCA77C2B2AE63
	prime5 = 0x27D4EB2F165667C5
)

// HashKey is a fast, non-cryptographic 64-bit hash of b for consistent
// hashing (XXH64's construction for short inputs, applied to any length,
// with seed 0). It is stable across processes and versions of Weir, so
// every instance maps a key to the same peer. It does not allocate.
func HashKey(b []byte) uint64 { return hashSeed(b, 0) }

func hashSeed(b []byte, seed uint64) uint64 {
	h := seed + prime5 + uint64(len(b))
	for len(b) >= 8 {
		k := binary.LittleEndian.Uint64(b)
		k *= prime2
		k = bits.RotateLeft64(k, 31)
		k *= prime1
		h ^= k
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
		b = b[8:]
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b)) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}
