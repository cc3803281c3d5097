// Scenario list_foreign_remove: a segmented LRU cache (SLRU) in front of a
// product catalogue. New entries go to the probation list; a second hit
// promotes them to the protected list; protected overflow is demoted back to
// probation, and probation overflow is evicted. When a product changes, the
// catalogue calls Invalidate(key). Three request goroutines share the cache
// behind a mutex.
//
// The ghost bug: Invalidate always does c.probation.Remove(e), but a hot
// entry lives in the protected list. Remove with another list's element
// silently does nothing, so the entry stays in the protected list as a ghost;
// when it is later demoted it is put back into the index and the old price is
// served again. Expected finding: list_foreign_remove.
package main

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

type entry struct {
	key     string
	version int
	hot     bool // in the protected list
}

type Cache struct {
	mu                  sync.Mutex
	items               map[string]*list.Element
	probation           *list.List
	protected           *list.List
	probCap, protCap    int
	minVersion          map[string]int // from invalidation events
	hits, misses, stale int
}

func NewCache(probCap, protCap int) *Cache {
	return &Cache{items: map[string]*list.Element{}, probation: list.New(), protected: list.New(),
		probCap: probCap, protCap: protCap, minVersion: map[string]int{}}
}

// Get returns the cached version of key, loading it from src on a miss.
func (c *Cache) Get(key string, src *Catalogue) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		ent := e.Value.(*entry)
		c.hits++
		if ent.version < c.minVersion[key] {
			c.stale++ // served a version older than an invalidation we processed
		}
		if ent.hot {
			c.protected.MoveToFront(e)
		} else {
			c.promote(e)
		}
		return ent.version
	}
	c.misses++
	ent := &entry{key: key, version: src.Version(key)}
	c.items[key] = c.probation.PushFront(ent)
	if c.probation.Len() > c.probCap {
		victim := c.probation.Back()
		c.probation.Remove(victim)
		delete(c.items, victim.Value.(*entry).key)
	}
	return ent.version
}

func (c *Cache) promote(e *list.Element) {
	ent := e.Value.(*entry)
	c.probation.Remove(e)
	ent.hot = true
	c.items[ent.key] = c.protected.PushFront(ent)
	if c.protected.Len() > c.protCap {
		old := c.protected.Back()
		c.protected.Remove(old)
		oe := old.Value.(*entry)
		oe.hot = false
		c.items[oe.key] = c.probation.PushFront(oe)
	}
}

// Invalidate drops key after the product changed to version.
func (c *Cache) Invalidate(key string, version int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.minVersion[key] = version
	if e, ok := c.items[key]; ok {
		c.probation.Remove(e) // BUG: hot entries are in c.protected; ghostrace:expect list_foreign_remove
		delete(c.items, key)
	}
}

// Catalogue is the source of truth: a version number per product.
type Catalogue struct {
	mu       sync.Mutex
	versions map[string]int
}

func (s *Catalogue) Version(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versions[key]
}

func (s *Catalogue) Update(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[key]++
	return s.versions[key]
}

func productKey(i int) string { return fmt.Sprintf("product-%03d", i) }

func main() {
	src := &Catalogue{versions: map[string]int{}}
	cache := NewCache(24, 48)
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 6000; i++ {
				// Skewed traffic: a few popular products, a long tail.
				n := (i*7 + g*13) % 100
				var k int
				if n < 70 {
					k = n % 20
				} else {
					k = 20 + (i*31+g)%180
				}
				cache.Get(productKey(k), src)
				if i%50 == 49 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() { // price updates for popular products
		defer wg.Done()
		for r := 0; r < 60; r++ {
			time.Sleep(4 * time.Millisecond)
			key := productKey(r * 7 % 20)
			cache.Invalidate(key, src.Update(key))
		}
	}()
	wg.Wait()
	fmt.Printf("list_foreign_remove: %d hits, %d misses; %d hits served a price that had been invalidated; index holds %d entries, lists hold %d\n",
		cache.hits, cache.misses, cache.stale, len(cache.items), cache.probation.Len()+cache.protected.Len())
}
