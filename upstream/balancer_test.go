package upstream

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// testPeers returns peers with the given weights. Their addresses are
// never dialed by balancer tests.
func testPeers(weights ...int) []*Peer {
	ps := make([]*Peer, len(weights))
	for i, w := range weights {
		ps[i] = NewPeer(fmt.Sprintf("127.0.0.1:%d", 20000+i), w, i, PoolOptions{})
	}
	return ps
}

func evenPeers(n int) []*Peer {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return testPeers(w...)
}

func mustBalancer(t testing.TB, name string, peers []*Peer) Balancer {
	t.Helper()
	b, err := NewBalancer(name, peers)
	if err != nil {
		t.Fatalf("NewBalancer(%q): %v", name, err)
	}
	return b
}

// counts picks n times and returns how often each peer Index was chosen.
func counts(t *testing.T, b Balancer, n int, tried uint64) map[int]int {
	t.Helper()
	c := map[int]int{}
	for i := range n {
		p := b.Pick(HashKey([]byte(fmt.Sprint(i))), tried)
		if p == nil {
			t.Fatalf("pick %d: nil", i)
		}
		c[p.Index]++
	}
	return c
}

func TestNewBalancerErrors(t *testing.T) {
	_, err := NewBalancer("random", evenPeers(2))
	if err == nil {
		t.Fatal("unknown name accepted")
	}
	for _, n := range balancerNames {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}

	dupIndex := evenPeers(2)
	dupIndex[1].Index = 0
	badIndex := evenPeers(1)
	badIndex[0].Index = 64
	zeroWeight := evenPeers(2)
	zeroWeight[1].Weight = 0
	hugeWeight := evenPeers(2)
	hugeWeight[0].Weight = maxWeight + 1
	cases := map[string][]*Peer{
		"no peers":     nil,
		"65 peers":     evenPeers(65),
		"nil peer":     {nil},
		"dup index":    dupIndex,
		"index 64":     badIndex,
		"zero weight":  zeroWeight,
		"huge weight":  hugeWeight,
		"neg index":    {{Addr: "x:1", Weight: 1, Index: -1}},
		"nil in group": append(evenPeers(2), nil),
	}
	for what, ps := range cases {
		for _, name := range balancerNames {
			if _, err := NewBalancer(name, ps); err == nil {
				t.Errorf("%s/%s: no error", what, name)
			}
		}
	}

	for _, name := range append(BalancerNames(), "") {
		if _, err := NewBalancer(name, evenPeers(64)); err != nil {
			t.Errorf("%q with 64 peers: %v", name, err)
		}
	}
}

func TestRoundRobinEven(t *testing.T) {
	for _, n := range []int{1, 4, 5} {
		b := mustBalancer(t, RoundRobin, evenPeers(n))
		c := counts(t, b, 100, 0)
		for i := range n {
			if c[i] != 100/n {
				t.Errorf("%d peers: peer %d picked %d times, want %d (%v)", n, i, c[i], 100/n, c)
			}
		}
	}
}

func TestRoundRobinOrder(t *testing.T) {
	b := mustBalancer(t, RoundRobin, evenPeers(3))
	var got []int
	for range 7 {
		got = append(got, b.Pick(0, 0).Index)
	}
	if fmt.Sprint(got) != "[0 1 2 0 1 2 0]" {
		t.Errorf("order %v", got)
	}
}

func TestRoundRobinSkipsUnavailable(t *testing.T) {
	ps := evenPeers(4)
	ps[1].SetUp(false)
	ps[2].ReportFailure(1, 1<<40) // ejected
	b := mustBalancer(t, RoundRobin, ps)
	c := counts(t, b, 100, 0)
	if c[1] != 0 || c[2] != 0 || c[0]+c[3] != 100 {
		t.Errorf("picked unavailable peers: %v", c)
	}
}

func TestWeightedRoundRobinRatio(t *testing.T) {
	b := mustBalancer(t, WeightedRoundRobin, testPeers(3, 1))
	c := counts(t, b, 400, 0)
	if abs(c[0]-300) > 1 || abs(c[1]-100) > 1 {
		t.Errorf("3:1 over 400 picks: %v", c)
	}
}

// The sequence nginx documents for weights 5, 1, 1: smooth, not a a a a a b c.
func TestWeightedRoundRobinSmooth(t *testing.T) {
	b := mustBalancer(t, WeightedRoundRobin, testPeers(5, 1, 1))
	var sb strings.Builder
	for range 14 {
		sb.WriteByte("abc"[b.Pick(0, 0).Index])
	}
	if got := sb.String(); got != "aabacaaaabacaa" {
		t.Errorf("sequence %s, want aabacaa twice", got)
	}
}

func TestWeightedRoundRobinLargeWeights(t *testing.T) {
	// Weights whose schedule would be too long to precompute: every pick
	// runs the live algorithm, which is exact over one cycle.
	ps := testPeers(15001, 5000)
	b := mustBalancer(t, WeightedRoundRobin, ps)
	if b.(*weightedRoundRobin).sched != nil {
		t.Fatal("schedule precomputed for a 20001-slot cycle")
	}
	c := counts(t, b, 20001, 0)
	if c[0] != 15001 || c[1] != 5000 {
		t.Errorf("counts %v", c)
	}
	// A GCD reduces to a short schedule.
	b = mustBalancer(t, WeightedRoundRobin, testPeers(30000, 10000))
	if n := len(b.(*weightedRoundRobin).sched); n != 4 {
		t.Errorf("schedule length %d, want 4", n)
	}
}

func TestWeightedRoundRobinUnavailable(t *testing.T) {
	ps := testPeers(3, 2, 1)
	ps[1].SetUp(false)
	b := mustBalancer(t, WeightedRoundRobin, ps)
	c := counts(t, b, 4000, 0)
	// Peer 1's share goes to the others in proportion to their weights.
	if c[1] != 0 || math.Abs(float64(c[0])/float64(c[2])-3) > 0.15 {
		t.Errorf("counts %v, want 3:0:1", c)
	}
	// Tried peers are left out the same way.
	ps[1].SetUp(true)
	c = counts(t, b, 4000, 1<<0)
	if c[0] != 0 || math.Abs(float64(c[1])/float64(c[2])-2) > 0.15 {
		t.Errorf("counts with peer 0 tried %v, want 0:2:1", c)
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	ps := evenPeers(3)
	ps[0].inflight.Store(5)
	ps[2].inflight.Store(3)
	b := mustBalancer(t, LeastConn, ps)
	c := counts(t, b, 50, 0)
	if c[1] != 50 {
		t.Errorf("counts %v, want all on the idle peer 1", c)
	}
	// With the idle peer tried, the next least loaded one.
	c = counts(t, b, 50, 1<<1)
	if c[2] != 50 {
		t.Errorf("counts %v, want all on peer 2", c)
	}
}

func TestLeastConnTiesRotate(t *testing.T) {
	b := mustBalancer(t, LeastConn, evenPeers(4))
	c := counts(t, b, 100, 0)
	for i := range 4 {
		if c[i] != 25 {
			t.Errorf("idle peers: counts %v, want 25 each", c)
			break
		}
	}
}

func TestLeastConnWeights(t *testing.T) {
	ps := testPeers(3, 1)
	ps[0].inflight.Store(2) // 2/3 per unit of weight
	ps[1].inflight.Store(1) // 1/1
	b := mustBalancer(t, LeastConn, ps)
	if c := counts(t, b, 20, 0); c[0] != 20 {
		t.Errorf("counts %v, want all on the heavier peer", c)
	}
	ps[0].inflight.Store(4) // 4/3
	if c := counts(t, b, 20, 0); c[1] != 20 {
		t.Errorf("counts %v, want all on peer 1", c)
	}
}

func TestLeastConnFollowsLoad(t *testing.T) {
	// Simulate requests that never finish: least_conn spreads them evenly.
	ps := evenPeers(4)
	b := mustBalancer(t, LeastConn, ps)
	for range 40 {
		b.Pick(0, 0).Begin()
	}
	for _, p := range ps {
		if p.Inflight() != 10 {
			t.Errorf("peer %d has %d in flight, want 10", p.Index, p.Inflight())
		}
	}
}

func TestP2CNeverPicksTried(t *testing.T) {
	ps := evenPeers(8)
	b := mustBalancer(t, P2C, ps)
	for tried := range uint64(255) {
		for range 50 {
			p := b.Pick(0, tried)
			if p == nil {
				t.Fatalf("tried %08b: nil", tried)
			}
			if tried&(1<<p.Index) != 0 {
				t.Fatalf("tried %08b: picked tried peer %d", tried, p.Index)
			}
		}
	}
	if p := b.Pick(0, 255); p != nil {
		t.Errorf("all tried: picked %d", p.Index)
	}
}

func TestP2CAvoidsLoaded(t *testing.T) {
	// The two choices are distinct, so the one busy peer is never the
	// less loaded of them.
	ps := evenPeers(4)
	ps[2].inflight.Store(10)
	b := mustBalancer(t, P2C, ps)
	c := counts(t, b, 2000, 0)
	if c[2] != 0 {
		t.Errorf("busy peer picked %d times: %v", c[2], c)
	}
	for _, i := range []int{0, 1, 3} {
		if c[i] < 500 || c[i] > 833 {
			t.Errorf("peer %d picked %d times of 2000: %v", i, c[i], c)
		}
	}
	// With two peers p2c always compares both.
	ps = evenPeers(2)
	ps[0].inflight.Store(1)
	b = mustBalancer(t, P2C, ps)
	if c := counts(t, b, 200, 0); c[1] != 200 {
		t.Errorf("two peers: %v, want all on the idle one", c)
	}
}

func TestP2CWeights(t *testing.T) {
	b := mustBalancer(t, P2C, testPeers(3, 1))
	c := counts(t, b, 20000, 0)
	// Idle peers: the first choice wins ties, and it is drawn by weight.
	if r := float64(c[0]) / float64(c[1]); r < 2.7 || r > 3.3 {
		t.Errorf("3:1 weights gave %v (ratio %.2f)", c, r)
	}
}

func TestConsistentHashStable(t *testing.T) {
	ps := evenPeers(5)
	b1 := mustBalancer(t, ConsistentHash, ps)
	b2 := mustBalancer(t, ConsistentHash, testPeers(1, 1, 1, 1, 1)) // same addresses
	for i := range 1000 {
		key := HashKey(fmt.Appendf(nil, "/user/%d", i))
		p := b1.Pick(key, 0)
		if q := b1.Pick(key, 0); q != p {
			t.Fatalf("key %d: %d then %d", i, p.Index, q.Index)
		}
		if q := b2.Pick(key, 0); q.Index != p.Index {
			t.Fatalf("key %d: balancers built alike disagree: %d vs %d", i, p.Index, q.Index)
		}
	}
}

func TestConsistentHashSpread(t *testing.T) {
	b := mustBalancer(t, ConsistentHash, testPeers(1, 1, 2, 4))
	c := counts(t, b, 80000, 0)
	want := []float64{10000, 10000, 20000, 40000}
	for i, w := range want {
		if math.Abs(float64(c[i])-w)/w > 0.05 {
			t.Errorf("peer %d (weight share %.0f): %d keys; all %v", i, w, c[i], c)
		}
	}
	// The table itself matches the weights to about 1%.
	tab := map[uint8]int{}
	for _, e := range b.(*maglev).table {
		tab[e]++
	}
	for i, w := range want {
		share := w / 80000 * maglevSize
		if math.Abs(float64(tab[uint8(i)])-share)/share > 0.01 {
			t.Errorf("peer %d holds %d table entries, want about %.0f", i, tab[uint8(i)], share)
		}
	}
}

func TestConsistentHashMinimalRemap(t *testing.T) {
	const n, keys = 10, 100000
	all := evenPeers(n)
	before := mustBalancer(t, ConsistentHash, all)
	// Remove peer 3 from the group; the rest keep their addresses (and
	// get new positions).
	var rest []*Peer
	for _, p := range all {
		if p.Index != 3 {
			rest = append(rest, NewPeer(p.Addr, 1, len(rest), PoolOptions{}))
		}
	}
	after := mustBalancer(t, ConsistentHash, rest)
	moved, lost := 0, 0
	for i := range keys {
		key := HashKey(fmt.Appendf(nil, "k%d", i))
		a, b := before.Pick(key, 0).Addr, after.Pick(key, 0).Addr
		if a == all[3].Addr {
			lost++
			continue
		}
		if a != b {
			moved++
		}
	}
	// The removed peer's keys (about 1/N) must move; of the others, only
	// Maglev's small disruption may.
	if f := float64(lost) / keys; math.Abs(f-1.0/n) > 0.01 {
		t.Errorf("removed peer held %.3f of keys, want about %.3f", f, 1.0/n)
	}
	if f := float64(moved) / keys; f > 0.03 {
		t.Errorf("%.3f of the other keys moved, want under 0.03", f)
	}
	t.Logf("removed peer held %.2f%% of keys; %.2f%% of the others moved", 100*float64(lost)/keys, 100*float64(moved)/keys)
}

func TestConsistentHashFallback(t *testing.T) {
	ps := evenPeers(6)
	b := mustBalancer(t, ConsistentHash, ps)
	const keys = 20000
	orig := make([]int, keys)
	for i := range keys {
		orig[i] = b.Pick(HashKey(fmt.Appendf(nil, "k%d", i)), 0).Index
	}
	// Peer 2 goes down: only its keys move, deterministically, and they
	// spread over all the others.
	ps[2].SetUp(false)
	spread := map[int]int{}
	for i := range keys {
		key := HashKey(fmt.Appendf(nil, "k%d", i))
		p := b.Pick(key, 0)
		if orig[i] != 2 && p.Index != orig[i] {
			t.Fatalf("key %d moved from healthy peer %d to %d", i, orig[i], p.Index)
		}
		if orig[i] == 2 {
			if p.Index == 2 {
				t.Fatalf("key %d still on the down peer", i)
			}
			if q := b.Pick(key, 0); q != p {
				t.Fatalf("key %d: fallback not deterministic", i)
			}
			spread[p.Index]++
		}
	}
	if len(spread) != 5 {
		t.Errorf("down peer's keys went to %v, want all 5 others", spread)
	}
	// Retrying with the first choice tried behaves the same as it being
	// down.
	ps[2].SetUp(true)
	for i := range keys {
		if orig[i] != 2 {
			continue
		}
		key := HashKey(fmt.Appendf(nil, "k%d", i))
		if p := b.Pick(key, 1<<2); p == nil || p.Index == 2 {
			t.Fatalf("key %d: tried peer picked again", i)
		}
	}
}

func TestConsistentHashFallbackTinyShare(t *testing.T) {
	// Only a peer with a tiny share is left: the table walk may not reach
	// it, and the direct choice must.
	w := make([]int, 64)
	for i := range w {
		w[i] = maxWeight
	}
	w[63] = 1
	ps := testPeers(w...)
	b := mustBalancer(t, ConsistentHash, ps)
	tried := uint64(1)<<63 - 1
	for i := range 1000 {
		if p := b.Pick(HashKey(fmt.Append(nil, i)), tried); p == nil || p.Index != 63 {
			t.Fatalf("key %d: got %v, want peer 63", i, p)
		}
	}
}

func TestAllUnavailable(t *testing.T) {
	for _, name := range balancerNames {
		ps := testPeers(1, 2, 3)
		b := mustBalancer(t, name, ps)
		for _, p := range ps {
			p.SetUp(false)
		}
		for i := range 20 {
			if p := b.Pick(uint64(i)*0x9E3779B97F4A7C15, 0); p != nil {
				t.Errorf("%s: picked %d with every peer down", name, p.Index)
			}
		}
		// Mixed: some down, the rest ejected.
		ps[0].SetUp(true)
		ps[0].ReportFailure(1, 1<<40)
		if p := b.Pick(1, 0); p != nil {
			t.Errorf("%s: picked ejected peer %d", name, p.Index)
		}
	}
}

func TestTriedMask(t *testing.T) {
	for _, name := range balancerNames {
		ps := testPeers(1, 2, 3, 4, 5)
		b := mustBalancer(t, name, ps)
		for only := range 5 {
			tried := uint64(1<<5-1) &^ (1 << only)
			for i := range 30 {
				p := b.Pick(uint64(i)*0x9E3779B97F4A7C15, tried)
				if p == nil || p.Index != only {
					t.Fatalf("%s: only peer %d untried, got %v", name, only, p)
				}
			}
		}
		if p := b.Pick(7, 1<<5-1); p != nil {
			t.Errorf("%s: all tried, got peer %d", name, p.Index)
		}
		// Bits of indexes not in the group are ignored.
		if p := b.Pick(7, ^uint64(1<<5-1)); p == nil {
			t.Errorf("%s: foreign bits made Pick fail", name)
		}
	}
}

func TestTriedMaskSparseIndexes(t *testing.T) {
	// Index is the peer's position in its group, which need not match its
	// position in the balancer's slice.
	ps := []*Peer{
		NewPeer("127.0.0.1:1", 1, 40, PoolOptions{}),
		NewPeer("127.0.0.1:2", 1, 7, PoolOptions{}),
		NewPeer("127.0.0.1:3", 1, 63, PoolOptions{}),
	}
	for _, name := range balancerNames {
		b := mustBalancer(t, name, ps)
		for i := range 30 {
			p := b.Pick(uint64(i)*0x9E3779B97F4A7C15, 1<<40|1<<63)
			if p == nil || p.Index != 7 {
				t.Fatalf("%s: got %v, want index 7", name, p)
			}
		}
	}
}

func TestPickConcurrent(t *testing.T) {
	for _, name := range balancerNames {
		ps := testPeers(1, 2, 3, 4)
		b := mustBalancer(t, name, ps)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 2000 {
					if g == 0 && i%100 == 0 {
						ps[i/100%4].SetUp(i%200 != 0)
						continue
					}
					tried := uint64(1) << (i % 4)
					if p := b.Pick(uint64(i), tried); p != nil {
						if p.Index == i%4 {
							t.Errorf("%s: picked tried peer", name)
							return
						}
						p.Begin()
						p.End()
					}
				}
			})
		}
		wg.Wait()
	}
}

func TestPickAllocs(t *testing.T) {
	for _, name := range balancerNames {
		ps := testPeers(1, 2, 3, 4, 5, 6, 7, 8)
		ps[3].SetUp(false)
		ps[5].ReportFailure(1, 1<<40)
		b := mustBalancer(t, name, ps)
		var i uint64
		if a := testing.AllocsPerRun(1000, func() {
			i++
			b.Pick(i*0x9E3779B97F4A7C15, i&1)
		}); a != 0 {
			t.Errorf("%s: %v allocs per Pick", name, a)
		}
	}
}

func TestHashKey(t *testing.T) {
	// For inputs under 32 bytes HashKey is XXH64 with seed 0.
	for in, want := range map[string]uint64{
		"":    0xEF46DB3751D8E999,
		"a":   0xD24EC4F1A98C6E5B,
		"abc": 0x44BC2CF5AD770999,
	} {
		if got := HashKey([]byte(in)); got != want {
			t.Errorf("HashKey(%q) = %#x, want %#x", in, got, want)
		}
	}
	seen := map[uint64]string{}
	for i := range 100000 {
		s := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		h := HashKey([]byte(s))
		if prev, ok := seen[h]; ok {
			t.Fatalf("collision: %q and %q", prev, s)
		}
		seen[h] = s
	}
	long := []byte(strings.Repeat("0123456789", 20))
	if a := testing.AllocsPerRun(100, func() { HashKey(long) }); a != 0 {
		t.Errorf("HashKey allocates %v", a)
	}
	// Every input byte matters, at every length.
	for n := 1; n < len(long); n++ {
		h := HashKey(long[:n])
		long[n-1] ^= 1
		if HashKey(long[:n]) == h {
			t.Errorf("length %d: last byte ignored", n)
		}
		long[n-1] ^= 1
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func BenchmarkPick(b *testing.B) {
	for _, name := range balancerNames {
		ps := testPeers(1, 1, 2, 2, 3, 3, 4, 4)
		bal := mustBalancer(b, name, ps)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var key uint64
			for b.Loop() {
				key += 0x9E3779B97F4A7C15
				if bal.Pick(key, 0) == nil {
					b.Fatal("nil")
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var key uint64
				for pb.Next() {
					key += 0x9E3779B97F4A7C15
					p := bal.Pick(key, 0)
					p.Begin()
					p.End()
				}
			})
		})
	}
}

func BenchmarkHashKey(b *testing.B) {
	for _, n := range []int{8, 32, 256} {
		buf := []byte(strings.Repeat("x", n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				HashKey(buf)
			}
		})
	}
}
