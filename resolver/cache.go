package resolver

import (
	"container/list"
	"time"
)

// cache maps a name to its results, one per family, each with its own
// expiry. It holds at most max names and drops the least recently used
// one to make room. Expired results stay until they are replaced or their
// name is dropped; get never returns them. It is not safe for concurrent
// use: the Resolver's mutex guards it.
type cache struct {
	max   int
	order list.List // of *cacheEntry, most recently used first
	names map[string]*list.Element
}

type cacheEntry struct {
	name  string
	slots [2]cacheSlot // indexed by Family.index
}

type cacheSlot struct {
	set     bool
	res     result
	expires time.Time
}

func newCache(limit int) *cache {
	return &cache{max: limit, names: make(map[string]*list.Element)}
}

// get returns the result for (name, fam) if one is cached and has not
// expired at now.
func (c *cache) get(name string, fam Family, now time.Time) (result, bool) {
	el, ok := c.names[name]
	if !ok {
		return result{}, false
	}
	s := &el.Value.(*cacheEntry).slots[fam.index()]
	if !s.set || !now.Before(s.expires) {
		return result{}, false
	}
	c.order.MoveToFront(el)
	return s.res, true
}

// put stores the result for (name, fam) until expires.
func (c *cache) put(name string, fam Family, res result, expires time.Time) {
	el, ok := c.names[name]
	if ok {
		c.order.MoveToFront(el)
	} else {
		el = c.order.PushFront(&cacheEntry{name: name})
		c.names[name] = el
		for c.order.Len() > c.max {
			oldest := c.order.Back()
			c.order.Remove(oldest)
			delete(c.names, oldest.Value.(*cacheEntry).name)
		}
	}
	el.Value.(*cacheEntry).slots[fam.index()] = cacheSlot{set: true, res: res, expires: expires}
}

// len returns the number of names held.
func (c *cache) len() int { return c.order.Len() }

// clear forgets every name.
func (c *cache) clear() {
	c.order.Init()
	clear(c.names)
}
