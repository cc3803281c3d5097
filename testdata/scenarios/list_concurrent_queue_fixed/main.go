// Scenario list_concurrent_queue_fixed: the dispatcher of
// list_concurrent_queue with the fix. The pending list sits behind a mutex:
// Submit pushes and Next takes the front element and removes it in one
// critical section, so no two goroutines are ever inside PushBack or Remove
// at once and every job runs exactly once. Same traffic and worker pool.
// Expected findings: none.
package main

import (
	"container/list"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

type Job struct {
	ID   int
	Kind string
}

type Dispatcher struct {
	mu      sync.Mutex
	pending *list.List
}

func (d *Dispatcher) Submit(j Job) (panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending.PushBack(j)
	return false
}

// Next pops the oldest pending job.
func (d *Dispatcher) Next() (j Job, ok bool, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.pending.Front()
	if e == nil {
		return Job{}, false, false
	}
	v := d.pending.Remove(e)
	j, ok = v.(Job)
	return j, ok, false
}

func (d *Dispatcher) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending.Len()
}

const (
	producers   = 2
	workers     = 3
	perProducer = 40000
)

// process is the job's work (a few microseconds of hashing).
func process(j Job) uint32 {
	h := uint32(2166136261)
	for k := 0; k < 400; k++ {
		h = (h ^ uint32(j.ID+k)) * 16777619
	}
	return h
}

func main() {
	// Same two-P floor as list_concurrent_queue.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	d := &Dispatcher{pending: list.New()}
	runs := make([]int32, producers*perProducer)
	var panics, bogus int64
	var producing int32 = producers
	var sink uint32

	var start, wg sync.WaitGroup
	start.Add(1)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			defer atomic.AddInt32(&producing, -1)
			start.Wait()
			for i := 0; i < perProducer; i++ {
				if d.Submit(Job{ID: p*perProducer + i, Kind: "resize-image"}) {
					atomic.AddInt64(&panics, 1)
				}
				if i%100 == 99 {
					time.Sleep(time.Millisecond)
				}
			}
		}(p)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			idle := 0
			for time.Now().Before(deadline) {
				j, ok, panicked := d.Next()
				switch {
				case panicked:
					// The worker pool logs the panic and backs off.
					atomic.AddInt64(&panics, 1)
					time.Sleep(time.Millisecond)
				case !ok:
					if atomic.LoadInt32(&producing) == 0 {
						if idle++; idle > 1000 {
							return
						}
					}
					runtime.Gosched()
				case j.ID < 0 || j.ID >= len(runs):
					atomic.AddInt64(&bogus, 1)
				default:
					idle = 0
					if atomic.AddInt32(&runs[j.ID], 1) > 1 {
						// Already ran: the queue handed out a stale job. Back off.
						time.Sleep(200 * time.Microsecond)
						continue
					}
					atomic.AddUint32(&sink, process(j))
				}
			}
		}()
	}
	start.Done()
	wg.Wait()

	lost, twice := 0, 0
	for i := range runs {
		switch n := atomic.LoadInt32(&runs[i]); {
		case n == 0:
			lost++
		case n > 1:
			twice += int(n - 1)
		}
	}
	fmt.Printf("list_concurrent_queue_fixed: %d jobs submitted: %d never ran, %d handed out again after they ran, %d recovered panics; list reports %d pending\n",
		len(runs), lost, twice, panics, d.Len())
}
