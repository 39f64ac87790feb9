package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir"
)

// TestReload: a reload that points the route at another origin switches
// traffic at once, also on kept-alive client connections, while a request
// in flight finishes on the old origin; a reload that
// cannot be compiled, or that changes listeners, is refused and the
// previous configuration keeps serving.
func TestReload(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	a := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.Header().Set("X-Origin", "a")
		_, _ = io.WriteString(w, "a")
	}))
	b := namedOrigin(t, "b")
	p := startWeirConfig(t, parseConfig(t, oneRouteConfig(a, "", "")), weir.Options{})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before Weir drains
	c := newClient(t)
	expect := func(want, when string) {
		t.Helper()
		for i := range 5 {
			if status, body := get(t, c, p.url("/")); status != 200 || body != want {
				t.Fatalf("%s, request %d: %d %q, want 200 from %s", when, i, status, body, want)
			}
		}
	}
	expect("a", "before any reload")

	// A request in flight during the reload finishes where it started.
	slow := make(chan string, 1)
	go func() {
		resp, err := newClient(t).Get(p.url("/slow"))
		if err != nil {
			slow <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached origin a")
	}

	if err := p.srv.Reload(parseConfig(t, oneRouteConfig(b, "", ""))); err != nil {
		t.Fatalf("reload to origin b: %v", err)
	}
	expect("b", "after reloading to b")
	once.Do(func() { close(release) })
	if got := <-slow; got != "200 a" {
		t.Errorf("request in flight during the reload: %s, want 200 a", got)
	}
	if got := p.srv.Group("app").Peers[0].Addr; got != b.addr() {
		t.Errorf("Group(app) peer is %s after the reload, want %s", got, b.addr())
	}

	bad := parseConfig(t, oneRouteConfig(a, "", ""))
	bad.Upstreams["app"].Balancer = "no_such_balancer"
	if err := p.srv.Reload(bad); err == nil {
		t.Fatal("a reload with an unknown balancer was accepted")
	}
	expect("b", "after a failed reload")

	moved := parseConfig(t, oneRouteConfig(a, "", ""))
	moved.Listeners[0].Address = "127.0.0.1:1"
	if err := p.srv.Reload(moved); err == nil {
		t.Fatal("a reload that changes listeners was accepted")
	}
	expect("b", "after a refused listener change")
}
