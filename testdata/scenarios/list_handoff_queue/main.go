// Scenario list_handoff_queue: a log shipper hands lines from its reader
// goroutine to its sender goroutine through a container/list. "Only one
// goroutine pushes and only one pops, so no lock is needed" — but PushBack and
// Remove both rewrite the sentinel's links and l.len.
//
// The ghost bug: one goroutine PushBack while the other Front + Remove, with
// no lock. A push racing the removal of the last element links the new line to
// a detached element (the line is lost), and l.len drifts. Expected finding:
// list_concurrent_mutation (goroutines inside PushBack and Remove on the same
// list at once).
package main

import (
	"container/list"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

type shipper struct {
	pending *list.List // no lock: single producer, single consumer
}

func (s *shipper) enqueue(line string) (panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	s.pending.PushBack(line) // ghostrace:expect list_concurrent_mutation
	return false
}

// take pops the oldest line, if any.
func (s *shipper) take() (line string, ok, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	e := s.pending.Front()
	if e == nil {
		return "", false, false
	}
	line, ok = s.pending.Remove(e).(string) // ghostrace:expect list_concurrent_mutation
	return line, ok, false
}

const lines = 60000

func main() {
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	s := &shipper{pending: list.New()}
	var panics, sent int64
	var done int32
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer atomic.StoreInt32(&done, 1)
		for i := 0; i < lines; i++ {
			if s.enqueue(fmt.Sprintf("GET /api/v1/items/%d 200", i)) {
				atomic.AddInt64(&panics, 1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			_, ok, panicked := s.take()
			if panicked {
				atomic.AddInt64(&panics, 1)
			}
			if ok {
				sent++
				continue
			}
			if atomic.LoadInt32(&done) == 1 && s.pending.Front() == nil {
				return
			}
			runtime.Gosched()
		}
	}()
	wg.Wait()
	fmt.Printf("list_handoff_queue: %d lines read, %d sent, %d lost, len %d, %d panics\n",
		lines, sent, int64(lines)-sent, s.pending.Len(), panics)
}
