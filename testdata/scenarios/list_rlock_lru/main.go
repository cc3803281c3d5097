// Scenario list_rlock_lru: a price cache is an LRU (map + container/list)
// behind a sync.RWMutex. Get "only reads", so it takes the read lock — but it
// also calls MoveToFront to mark the entry recently used, and MoveToFront
// rewrites four links of the list.
//
// The ghost bug: several readers inside MoveToFront on one list at once (the
// read lock excludes writers, not other readers). Links get crossed, entries
// fall out of the list while the map still holds them, and eviction removes
// the wrong entries. Expected finding: list_concurrent_mutation (goroutines
// inside MoveToFront on the same list at once).
package main

import (
	"container/list"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

type entry struct {
	key   int
	price int
}

type lru struct {
	mu    sync.RWMutex
	cap   int
	order *list.List
	items map[int]*list.Element
}

func newLRU(cap int) *lru {
	return &lru{cap: cap, order: list.New(), items: map[int]*list.Element{}}
}

func (c *lru) Get(key int) (price int, ok, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	c.mu.RLock() // "a lookup only reads"
	defer c.mu.RUnlock()
	e, ok := c.items[key]
	if !ok {
		return 0, false, false
	}
	c.order.MoveToFront(e) // ghostrace:expect list_concurrent_mutation
	return e.Value.(*entry).price, true, false
}

func (c *lru) Put(key, price int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		e.Value.(*entry).price = price
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&entry{key, price})
	if c.order.Len() > c.cap {
		// Links crossed by the readers can make Back() the list's own root (no
		// value): the damage is the story, not a crash of the cache.
		if last := c.order.Back(); last != nil {
			// Named at times too: a reader whose MoveToFront panicked (recovered
			// in Get) never ended its mutation (docs/detectors.md, limit of "definite").
			c.order.Remove(last) // ghostrace:expect list_concurrent_mutation
			if ent, ok := last.Value.(*entry); ok {
				delete(c.items, ent.key)
			}
		}
	}
}

func main() {
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	c := newLRU(64)
	for k := 0; k < 64; k++ {
		c.Put(k, 100+k)
	}
	var hits, panics int64
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; i < 200000; i++ {
				_, ok, panicked := c.Get((i*7 + r) % 80)
				if panicked {
					atomic.AddInt64(&panics, 1)
				}
				if ok {
					atomic.AddInt64(&hits, 1)
				}
				if i%5000 == 0 {
					c.Put(64+(i/5000)%16, i)
				}
			}
		}(r)
	}
	wg.Wait()
	// Entries reachable through the list against the map.
	linked := 0
	for e := c.order.Front(); e != nil && linked <= 2*len(c.items); e = e.Next() {
		linked++
	}
	fmt.Printf("list_rlock_lru: %d hits, %d in map, %d linked, len %d, %d panics\n", hits, len(c.items), linked, c.order.Len(), panics)
}
