// Scenario list_concurrent_queue: a job dispatcher keeps pending jobs in a
// container/list. It began single-threaded; now two producer goroutines
// PushBack jobs and three workers take batches of up to 16 jobs with Front +
// Remove, with no lock.
// Workers recover from panics and back off, as the service's worker pool does.
//
// The ghost bug: PushBack and Remove on one list from several goroutines at
// once. Two workers take the same front element and both remove it (the job
// runs twice), concurrent unlinking loses neighbours (jobs never run), the
// length field drifts, and now and then a worker dereferences a nil link and
// panics. Expected finding: list_concurrent_remove (two goroutines inside
// Remove on the same list at once); the second Remove of an element another
// worker already took also shows as list_stale_remove.
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
	pending *list.List // no lock: "only the dispatcher touches it" (no longer true)
}

func (d *Dispatcher) Submit(j Job) (panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	d.pending.PushBack(j)
	return false
}

// NextBatch pops up to len(buf) of the oldest pending jobs into buf.
func (d *Dispatcher) NextBatch(buf []Job) (n int, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	for tries := 0; n < len(buf) && tries < 2*len(buf); tries++ {
		e := d.pending.Front()
		if e == nil {
			break
		}
		j, ok := d.pending.Remove(e).(Job) // ghostrace:expect list_concurrent_remove
		if !ok {
			continue
		}
		buf[n] = j
		n++
	}
	return n, false
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
	// The overlap needs two threads running Go code at once; keep two Ps even
	// on a single CPU.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	d := &Dispatcher{pending: list.New()}
	runs := make([]int32, producers*perProducer)
	var panics int64
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
			buf := make([]Job, 16)
			for time.Now().Before(deadline) {
				n, panicked := d.NextBatch(buf)
				if panicked {
					// The worker pool logs the panic and backs off.
					atomic.AddInt64(&panics, 1)
					time.Sleep(time.Millisecond)
				}
				if n == 0 {
					if atomic.LoadInt32(&producing) == 0 {
						if idle++; idle > 1000 {
							return
						}
					}
					runtime.Gosched()
					continue
				}
				idle = 0
				for _, j := range buf[:n] {
					if j.ID < 0 || j.ID >= len(runs) {
						continue
					}
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
	fmt.Printf("list_concurrent_queue: %d jobs submitted: %d never ran, %d handed out again after they ran, %d recovered panics; list reports %d pending\n",
		len(runs), lost, twice, panics, d.pending.Len())
}
