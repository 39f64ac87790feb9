package forward

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/weirproxy/weir/proxy"
)

// groupCache keeps the route (and with it the upstream group and its
// connection pool) of each (destination, source address) pair that
// absolute-form requests went to. It is bounded: past max pairs the one
// used longest ago is closed, and a janitor closes pairs no request used
// for idle.
type groupCache struct {
	srv  *Server
	max  int
	idle time.Duration

	mu     sync.Mutex
	m      map[groupKey]*list.Element
	lru    list.List // of *groupEntry, most recently used first
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

type groupKey struct {
	dest string
	src  netip.Addr
}

type groupEntry struct {
	key   groupKey
	route *proxy.Route
	used  time.Time
}

func newGroupCache(s *Server, max int, idle time.Duration) *groupCache {
	c := &groupCache{srv: s, max: max, idle: idle, m: map[groupKey]*list.Element{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.janitor()
	return c
}

// route returns the route of (dest, src), creating it when needed.
func (c *groupCache) route(dest string, src netip.Addr) *proxy.Route {
	k := groupKey{dest, src}
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		ge := e.Value.(*groupEntry)
		ge.used = now
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		return ge.route
	}
	var evicted *proxy.Route
	if c.lru.Len() >= c.max {
		last := c.lru.Back()
		ge := last.Value.(*groupEntry)
		c.lru.Remove(last)
		delete(c.m, ge.key)
		evicted = ge.route
	}
	r := &proxy.Route{Name: "forward", Upstream: c.srv.newGroup(dest, src)}
	closed := c.closed
	if !closed {
		c.m[k] = c.lru.PushFront(&groupEntry{key: k, route: r, used: now})
	}
	c.mu.Unlock()
	if closed {
		// Shutting down: the one request gets its connection, which
		// closes when its exchange ends.
		r.Upstream.Close()
	}
	if evicted != nil {
		// Idle connections close now, busy ones when their exchange ends.
		evicted.Upstream.Close()
	}
	return r
}

// len returns how many pairs are kept.
func (c *groupCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// janitor closes the pools of pairs unused for idle.
func (c *groupCache) janitor() {
	defer close(c.done)
	t := time.NewTicker(max(c.idle/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.expire(now.Add(-c.idle))
		}
	}
}

// expire closes the pairs last used before cutoff.
func (c *groupCache) expire(cutoff time.Time) {
	var old []*proxy.Route
	c.mu.Lock()
	for e := c.lru.Back(); e != nil; {
		ge := e.Value.(*groupEntry)
		if !ge.used.Before(cutoff) {
			break
		}
		prev := e.Prev()
		c.lru.Remove(e)
		delete(c.m, ge.key)
		old = append(old, ge.route)
		e = prev
	}
	c.mu.Unlock()
	for _, r := range old {
		r.Upstream.Close()
	}
}

// close stops the janitor and closes every pool. Routes handed out later
// are not kept.
func (c *groupCache) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var all []*proxy.Route
	for e := c.lru.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*groupEntry).route)
	}
	c.lru.Init()
	clear(c.m)
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	for _, r := range all {
		r.Upstream.Close()
	}
}
