package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/weirproxy/weir"
)

// twoOriginConfig is a catch-all route to upstream "app" over peers a and
// b, with extra lines indented under the upstream.
func twoOriginConfig(a, b *origin, upstreamExtra string) string {
	return fmt.Sprintf(`
routes:
  - upstream: app
upstreams:
  app:
    peers: [%q, %q]
%s`, a.peer(), b.peer(), upstreamExtra)
}

// TestRoundRobinSplitsEvenly: 100 requests over two origins with
// round_robin land exactly 50 on each.
func TestRoundRobinSplitsEvenly(t *testing.T) {
	t.Parallel()
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	p := startWeir(t, twoOriginConfig(a, b, "    balancer: round_robin\n"), weir.Options{})
	c := newClient(t)
	counts := map[string]int{}
	for i := range 100 {
		status, body := get(t, c, p.url(fmt.Sprintf("/item/%d", i)))
		if status != 200 {
			t.Fatalf("request %d: status %d, body %q", i, status, body)
		}
		counts[body]++
	}
	if counts["a"] != 50 || counts["b"] != 50 {
		t.Fatalf("round robin split %v, want a:50 b:50", counts)
	}
	if a.requests.Load() != 50 || b.requests.Load() != 50 {
		t.Fatalf("origins counted a=%d b=%d requests, want 50 each", a.requests.Load(), b.requests.Load())
	}
}

// TestConsistentHashOnHeader: the same X-User goes to the same origin every
// time, and different users are spread over both origins.
func TestConsistentHashOnHeader(t *testing.T) {
	t.Parallel()
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	p := startWeir(t, twoOriginConfig(a, b, "    balancer: consistent_hash\n    hash_on: header:X-User\n"), weir.Options{})
	c := newClient(t)
	used := map[string]int{}
	for u := range 32 {
		user := fmt.Sprintf("user-%d", u)
		first := ""
		for i := range 20 {
			req, _ := http.NewRequest("GET", p.url("/profile"), nil)
			req.Header.Set("X-User", user)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Origin")
			if resp.StatusCode != 200 || got == "" {
				t.Fatalf("%s request %d: status %d, origin %q", user, i, resp.StatusCode, got)
			}
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("%s went to %s on request 1 but to %s on request %d", user, first, got, i+1)
			}
		}
		used[first]++
	}
	if used["a"] == 0 || used["b"] == 0 {
		t.Fatalf("32 users all hashed to one origin: %v", used)
	}
}

// TestLeastConnAndP2CSpreadLoad: least_conn and p2c both use both origins
// under sequential load, and least_conn steers around an origin that is
// busy with a slow request.
func TestLeastConnAndP2CSpreadLoad(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"least_conn", "p2c"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
			p := startWeir(t, twoOriginConfig(a, b, "    balancer: "+policy+"\n"), weir.Options{})
			c := newClient(t)
			counts := map[string]int{}
			for range 100 {
				status, body := get(t, c, p.url("/"))
				if status != 200 {
					t.Fatalf("status %d", status)
				}
				counts[body]++
			}
			// For p2c the split is random: fewer than 20 of 100 on one
			// side has a probability below 1e-9.
			if counts["a"] < 20 || counts["b"] < 20 {
				t.Fatalf("%s split %v: load not spread over both origins", policy, counts)
			}
		})
	}
	t.Run("least_conn avoids a busy origin", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		slow := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-release
			}
			w.Header().Set("X-Origin", "slow")
			_, _ = w.Write([]byte("slow"))
		}))
		fast := namedOrigin(t, "fast")
		p := startWeir(t, twoOriginConfig(slow, fast, "    balancer: least_conn\n"), weir.Options{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		c := newClient(t)
		// Send /slow until one lands on the slow origin and stays there;
		// the fast origin answers the others at once.
		var done chan int
		for attempt := 0; done == nil; attempt++ {
			if attempt == 4 {
				t.Fatal("4 requests in a row avoided the slow origin")
			}
			ch := make(chan int, 1)
			go func() {
				resp, err := c.Get(p.url("/slow"))
				if err != nil {
					ch <- 0
					return
				}
				resp.Body.Close()
				ch <- resp.StatusCode
			}()
			select {
			case <-entered:
				done = ch
			case <-ch:
			}
		}
		for i := range 20 {
			status, body := get(t, c, p.url("/quick"))
			if status != 200 || body != "fast" {
				t.Fatalf("request %d while the slow origin is busy: %d %q, want 200 from fast", i, status, body)
			}
		}
		once.Do(func() { close(release) })
		if st := <-done; st != 200 {
			t.Fatalf("slow request: status %d", st)
		}
	})
}
