// Scenario clean_sync_map (must stay silent): a presence service keeps who is
// online in a sync.Map. Connection goroutines Store and Delete their own
// user, lookups Load, and a counter goroutine Ranges over it. sync.Map does
// its own synchronisation and calls none of the runtime's map functions.
// Expected findings: none.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

type Presence struct {
	online sync.Map // user -> last seen (unix ms)
}

func (p *Presence) Connect(user string, now int64) { p.online.Store(user, now) }
func (p *Presence) Disconnect(user string)         { p.online.Delete(user) }
func (p *Presence) IsOnline(user string) bool {
	_, ok := p.online.Load(user)
	return ok
}

func (p *Presence) Count() int {
	n := 0
	p.online.Range(func(_, _ any) bool {
		n++
		return true
	})
	return n
}

func main() {
	p := &Presence{}
	var lookups, found int64
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				user := fmt.Sprintf("user-%d-%d", c, i%64)
				p.Connect(user, time.Now().UnixMilli())
				if p.IsOnline(fmt.Sprintf("user-%d-%d", (c+1)%6, i%64)) {
					atomic.AddInt64(&found, 1)
				}
				atomic.AddInt64(&lookups, 1)
				if i%3 == 2 {
					p.Disconnect(user)
				}
				if i%300 == 299 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(c)
	}
	stop := make(chan struct{})
	counts := make(chan int)
	go func() {
		max := 0
		for {
			select {
			case <-stop:
				counts <- max
				return
			case <-time.After(10 * time.Millisecond):
				if n := p.Count(); n > max {
					max = n
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	fmt.Printf("clean_sync_map: %d presence lookups (%d online), peak %d users online, %d online at the end\n",
		lookups, found, <-counts, p.Count())
}
