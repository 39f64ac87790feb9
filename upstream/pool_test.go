package upstream

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestPoolReuseAndPrune: a returned connection is reused, and one the peer
// closed while it sat idle is found without blocking and dropped.
func TestPoolReuseAndPrune(t *testing.T) {
	addr, accepted := acceptAll(t)
	p := NewPeer(addr, 1, 0, PoolOptions{}).Pool()
	c1, err := p.Get(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	server1 := <-accepted
	p.Put(c1)
	c2, err := p.Get(context.Background(), true)
	if err != nil || c2 != c1 || !c2.Reused {
		t.Fatalf("want the pooled connection back, got %p (reused=%v) err=%v", c2, c2 != nil && c2.Reused, err)
	}
	p.Put(c2)
	if n := p.PruneClosed(); n != 0 {
		t.Fatalf("pruned %d live connections", n)
	}
	server1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.PruneClosed() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a connection the peer closed was never detected")
		}
		time.Sleep(time.Millisecond) // polling the kernel's view, not synchronising goroutines
	}
	if open, idle, dialed := p.Stats(); open != 0 || idle != 0 || dialed != 1 {
		t.Fatalf("stats open=%d idle=%d dialed=%d", open, idle, dialed)
	}
	// With live=true a dead idle connection is skipped and a fresh one dialed.
	c3, _ := p.Get(context.Background(), false)
	server3 := <-accepted
	p.Put(c3)
	server3.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		c, err := p.Get(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Reused {
			c.Close()
			break
		}
		p.Put(c)
		if time.Now().After(deadline) {
			t.Fatal("Get(live) kept returning a closed connection")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestProbeThroughDeadlines: the reuse probe sees unasked bytes on an idle
// connection whatever read deadline its last exchange left: none, one
// still in the future, one that passed while it sat idle, and one set
// without being recorded in ReadDL.
func TestProbeThroughDeadlines(t *testing.T) {
	addr, accepted := acceptAll(t)
	p := NewPeer(addr, 1, 0, PoolOptions{}).Pool()
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Minute)
	for _, tc := range []struct {
		name          string
		set, recorded time.Time
	}{
		{"none", time.Time{}, time.Time{}},
		{"future", future, future},
		{"passed", past, past},
		{"unrecorded", past, future},
	} {
		c, err := p.Get(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		server := <-accepted
		c.SetReadDeadline(tc.set)
		c.ReadDL = tc.recorded
		if c.PeerClosed() {
			t.Fatalf("%s: a live idle connection was taken for closed", tc.name)
		}
		server.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) // unasked
		deadline := time.Now().Add(5 * time.Second)
		for !c.PeerClosed() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: unasked bytes were never seen", tc.name)
			}
			time.Sleep(time.Millisecond) // polling the kernel's view, not synchronising goroutines
		}
		c.Close()
		server.Close()
	}
}

// acceptAll listens on loopback and passes every accepted connection on.
func acceptAll(t *testing.T) (string, <-chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return ln.Addr().String(), accepted
}
