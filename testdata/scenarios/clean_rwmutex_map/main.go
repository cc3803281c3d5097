// Scenario clean_rwmutex_map (must stay silent): a feature-flag service.
// Request goroutines look flags up and a dashboard goroutine ranges over all
// flags under the read lock; an admin goroutine flips, adds and removes flags
// under the write lock. Readers run in parallel with each other, never with a
// writer. Expected findings: none.
package main

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

type Flags struct {
	mu    sync.RWMutex
	state map[string]bool
}

func (f *Flags) Enabled(name string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state[name]
}

func (f *Flags) Set(name string, on bool) {
	f.mu.Lock()
	f.state[name] = on
	f.mu.Unlock()
}

func (f *Flags) Remove(name string) {
	f.mu.Lock()
	delete(f.state, name)
	f.mu.Unlock()
}

// Render lists the enabled flags, ranging over the map under the read lock.
func (f *Flags) Render() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var on []string
	for name, enabled := range f.state {
		if enabled {
			on = append(on, name)
		}
	}
	sort.Strings(on)
	return on
}

func main() {
	f := &Flags{state: map[string]bool{}}
	for i := 0; i < 40; i++ {
		f.Set(fmt.Sprintf("flag-%02d", i), i%2 == 0)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hits := make([]int, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if f.Enabled(fmt.Sprintf("flag-%02d", (i+r)%50)) {
					hits[r]++
				}
				if i%100 == 99 {
					time.Sleep(time.Millisecond)
				}
			}
		}(r)
	}
	renders := 0
	wg.Add(1)
	go func() { // dashboard
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				_ = f.Render()
				renders++
			}
		}
	}()
	for i := 0; i < 300; i++ { // admin changes
		name := fmt.Sprintf("flag-%02d", i*7%50)
		if i%5 == 4 {
			f.Remove(name)
		} else {
			f.Set(name, i%3 != 0)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	total := 0
	for _, h := range hits {
		total += h
	}
	fmt.Printf("clean_rwmutex_map: 300 flag changes, %d dashboard renders, %d enabled-flag hits; %d flags on at the end\n",
		renders, total, len(f.Render()))
}
