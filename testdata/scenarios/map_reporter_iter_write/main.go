// Scenario map_reporter_iter_write: a multi-tenant API keeps each tenant's
// remaining credits in a map. Request handlers move credits between tenants
// (credits[from] -= n; credits[to] += n), and a metrics reporter ranges over
// the same map every 100 ms, pushing one line per tenant to the exporter.
// The reporter was written as "read-only, so no lock needed".
//
// The ghost bug: while the reporter is parked on the exporter between two
// iteration steps, handlers write the map it is ranging over. Its sums are
// torn: credits are conserved, yet the reported total is wrong. With more
// than one CPU the runtime sometimes kills such a process ("concurrent map
// iteration and map write"); this service runs with one CPU (GOMAXPROCS=1,
// as under a 1-CPU container quota), where map operations never overlap, the
// process never dies and the reports are silently wrong. Expected finding:
// map_iter_write (writes by another goroutine between two iteration steps).
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
	if l.credits[t.from] < t.amount {
		return false
	}
	l.credits[t.from] -= t.amount // ghostrace:expect map_iter_write
	l.credits[t.to] += t.amount   // ghostrace:expect map_iter_write
	return true
}

type Reporter struct {
	ledger *Ledger
	export chan<- string
}

// Sweep emits one gauge per tenant and returns the total it saw.
func (r *Reporter) Sweep() int64 {
	var total int64
	for tenant, c := range r.ledger.credits { // ghostrace:expect map_iter_write
		total += c
		r.export <- fmt.Sprintf("api_credits_remaining{tenant=%q} %d", tenant, c)
	}
	return total
}

func main() {
	runtime.GOMAXPROCS(1) // the 1-CPU deployment described above

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
	fmt.Printf("map_reporter_iter_write: %d transfers applied; %d of %d credit reports were torn (total off by up to %d of %d); %d gauge lines exported\n",
		total, torn, sweeps, worst, want, n)
}
