// Scenario clean_range_delete (must stay silent): a TTL cache for API tokens.
// Request goroutines put and get tokens under the cache's mutex; a janitor
// goroutine takes the same mutex every 10 ms and deletes expired tokens while
// ranging over the map. Deleting from a map during its own range is legal
// and deterministic: removed entries are simply not produced. Expected
// findings: none at warning or above; map_write_during_range (info) fires for
// the janitor's deletes.
package main

import (
	"fmt"
	"sync"
	"time"
)

type token struct {
	user    string
	expires time.Time
}

type TokenCache struct {
	mu      sync.Mutex
	tokens  map[string]token
	expired int
}

func (c *TokenCache) Put(id, user string, ttl time.Duration) {
	c.mu.Lock()
	c.tokens[id] = token{user: user, expires: time.Now().Add(ttl)}
	c.mu.Unlock()
}

func (c *TokenCache) Get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[id]
	if !ok || time.Now().After(t.expires) {
		return "", false
	}
	return t.user, true
}

// sweep drops expired tokens in place.
func (c *TokenCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, t := range c.tokens {
		if now.After(t.expires) {
			delete(c.tokens, id)
			c.expired++
		}
	}
}

func main() {
	c := &TokenCache{tokens: map[string]token{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // janitor
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				c.sweep(now)
			case <-stop:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	valid := make([]int, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				id := fmt.Sprintf("tok-%d-%d", g, i)
				c.Put(id, fmt.Sprintf("user%d", i%50), time.Duration(5+i%40)*time.Millisecond)
				if _, ok := c.Get(fmt.Sprintf("tok-%d-%d", g, i/2)); ok {
					valid[g]++
				}
				if i%20 == 19 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	<-done
	c.mu.Lock()
	left, expired := len(c.tokens), c.expired
	c.mu.Unlock()
	fmt.Printf("clean_range_delete: 8000 tokens issued, janitor expired %d during its own range, %d still cached, %d lookups valid\n",
		expired, left, valid[0]+valid[1]+valid[2]+valid[3])
}
