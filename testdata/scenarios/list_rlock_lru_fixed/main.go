// Scenario list_rlock_lru_fixed: list_rlock_lru with Get under the write lock
// (MoveToFront mutates the list): PushFront, MoveToFront and Remove from four
// goroutines, never at once.
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
	c.mu.Lock() // MoveToFront writes the list
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return 0, false, false
	}
	c.order.MoveToFront(e)
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
		if last := c.order.Back(); last != nil {
			c.order.Remove(last)
			delete(c.items, last.Value.(*entry).key)
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
	fmt.Printf("list_rlock_lru_fixed: %d hits, %d in map, %d linked, len %d, %d panics\n", hits, len(c.items), linked, c.order.Len(), panics)
}
