// Scenario map_reporter_iter_write_fixed: the credits service of
// map_reporter_iter_write with the fix. The ledger's map sits behind a
// sync.RWMutex: handlers take the write lock for a transfer; the reporter
// copies the map under the read lock, releases it, and only then talks to the
// exporter, so no write can land between two of its iteration steps and the
// lock is never held across the slow export. Expected findings: none.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

const (
	tenants       = 64
	startCredits  = 10000
	handlers      = 4
	sweeps        = 8
	sweepInterval = 50 * time.Millisecond
)

type transfer struct {
	from, to string
	amount   int64
}

type Ledger struct {
	mu      sync.RWMutex
	credits map[string]int64
}

func NewLedger() *Ledger {
	l := &Ledger{credits: make(map[string]int64, tenants)}
	for i := 0; i < tenants; i++ {
		l.credits[tenantName(i)] = startCredits
	}
	return l
}

func tenantName(i int) string { return fmt.Sprintf("tenant-%02d", i) }

// Apply is the request handler's update.
func (l *Ledger) Apply(t transfer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.credits[t.from] < t.amount {
		return false
	}
	l.credits[t.from] -= t.amount
	l.credits[t.to] += t.amount
	return true
}

type Reporter struct {
	ledger *Ledger
	export chan<- string
}

type gauge struct {
	tenant  string
	credits int64
}

// Sweep snapshots the ledger under the read lock, then emits one gauge per
// tenant and returns the total it saw.
func (r *Reporter) Sweep() int64 {
	r.ledger.mu.RLock()
	snap := make([]gauge, 0, len(r.ledger.credits))
	for tenant, c := range r.ledger.credits {
		snap = append(snap, gauge{tenant, c})
	}
	r.ledger.mu.RUnlock()

	var total int64
	for _, g := range snap {
		total += g.credits
		r.export <- fmt.Sprintf("api_credits_remaining{tenant=%q} %d", g.tenant, g.credits)
	}
	return total
}

func main() {
	runtime.GOMAXPROCS(1) // same 1-CPU deployment as map_reporter_iter_write

	ledger := NewLedger()
	requests := make(chan transfer, 256)
	lines := make(chan string)
	var wg sync.WaitGroup

	// Load generator: 20 requests per millisecond.
	stop := make(chan struct{})
	go func() {
		defer close(requests)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			for k := 0; k < 20; k++ {
				i := n*20 + k
				requests <- transfer{tenantName(i * 7 % tenants), tenantName((i*13 + 5) % tenants), int64(1 + i%50)}
			}
			time.Sleep(time.Millisecond)
		}
	}()

	applied := make([]int, handlers)
	for h := 0; h < handlers; h++ {
		wg.Add(1)
		go func(h int) {
			defer wg.Done()
			for t := range requests {
				if ledger.Apply(t) {
					applied[h]++
				}
			}
		}(h)
	}

	// Exporter: each pushed line costs a little network time.
	exported := make(chan int)
	go func() {
		n := 0
		for range lines {
			time.Sleep(100 * time.Microsecond)
			n++
		}
		exported <- n
	}()

	r := &Reporter{ledger: ledger, export: lines}
	const want = int64(tenants * startCredits)
	torn := 0
	var worst int64
	for s := 0; s < sweeps; s++ {
		time.Sleep(sweepInterval)
		got := r.Sweep()
		if got != want {
			torn++
			if d := got - want; d > worst || -d > worst {
				if d < 0 {
					d = -d
				}
				worst = d
			}
		}
	}
	close(lines)
	n := <-exported
	close(stop)
	wg.Wait()

	total := 0
	for _, a := range applied {
		total += a
	}
	fmt.Printf("map_reporter_iter_write_fixed: %d transfers applied; %d of %d credit reports were torn (total off by up to %d of %d); %d gauge lines exported\n",
		total, torn, sweeps, worst, want, n)
}
