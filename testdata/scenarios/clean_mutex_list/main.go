// Scenario clean_mutex_list (must stay silent): a generic LRU cache built on
// container/list, shared by several request goroutines behind one mutex. Get
// moves hits to the front, Put inserts and evicts from the back with Remove,
// Delete removes explicitly; every list operation happens with the lock held
// and every element is removed exactly once, from its own list. Expected
// findings: none.
package main

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

type LRU[K comparable, V any] struct {
	mu    sync.Mutex
	cap   int
	ll    *list.List
	index map[K]*list.Element
	evict int
}

type item[K comparable, V any] struct {
	key K
	val V
}

func NewLRU[K comparable, V any](capacity int) *LRU[K, V] {
	return &LRU[K, V]{cap: capacity, ll: list.New(), index: make(map[K]*list.Element)}
}

func (c *LRU[K, V]) Get(k K) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, hit := c.index[k]; hit {
		c.ll.MoveToFront(e)
		return e.Value.(*item[K, V]).val, true
	}
	return v, false
}

func (c *LRU[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, hit := c.index[k]; hit {
		e.Value.(*item[K, V]).val = v
		c.ll.MoveToFront(e)
		return
	}
	c.index[k] = c.ll.PushFront(&item[K, V]{k, v})
	if c.ll.Len() > c.cap {
		oldest := c.ll.Back()
		c.ll.Remove(oldest)
		delete(c.index, oldest.Value.(*item[K, V]).key)
		c.evict++
	}
}

func (c *LRU[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, hit := c.index[k]; hit {
		c.ll.Remove(e)
		delete(c.index, k)
	}
}

type profile struct {
	name  string
	score int
}

func main() {
	cache := NewLRU[int, profile](128)
	var wg sync.WaitGroup
	hits := make([]int, 5)
	for g := 0; g < 5; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 6000; i++ {
				id := (i*7 + g*13) % 100 // hot profiles
				if i%4 == 0 {
					id = 100 + (i*17+g*101)%300 // long tail
				}
				if _, ok := cache.Get(id); ok {
					hits[g]++
				} else {
					cache.Put(id, profile{fmt.Sprintf("user-%d", id), i})
				}
				if i%37 == 0 {
					cache.Delete((id + 1) % 400)
				}
				if i%600 == 599 {
					time.Sleep(15 * time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	total := 0
	for _, h := range hits {
		total += h
	}
	cache.mu.Lock()
	n, ev := cache.ll.Len(), cache.evict
	cache.mu.Unlock()
	fmt.Printf("clean_mutex_list: 30000 lookups, %d hits, %d evictions, %d entries cached (capacity 128)\n", total, ev, n)
}
