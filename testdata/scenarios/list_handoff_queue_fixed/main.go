// Scenario list_handoff_queue_fixed: list_handoff_queue with the list behind a
// mutex: PushBack and Front + Remove never run at once, every line is sent.
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
	mu      sync.Mutex
	pending *list.List
}

func (s *shipper) enqueue(line string) {
	s.mu.Lock()
	s.pending.PushBack(line)
	s.mu.Unlock()
}

func (s *shipper) take() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.pending.Front()
	if e == nil {
		return "", false
	}
	line, ok := s.pending.Remove(e).(string)
	return line, ok
}

func (s *shipper) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.Len()
}

const lines = 60000

func main() {
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	s := &shipper{pending: list.New()}
	var sent int64
	var done int32
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer atomic.StoreInt32(&done, 1)
		for i := 0; i < lines; i++ {
			s.enqueue(fmt.Sprintf("GET /api/v1/items/%d 200", i))
		}
	}()
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, ok := s.take(); ok {
				sent++
				continue
			}
			if atomic.LoadInt32(&done) == 1 && s.len() == 0 {
				return
			}
			runtime.Gosched()
		}
	}()
	wg.Wait()
	fmt.Printf("list_handoff_queue_fixed: %d lines read, %d sent, %d lost, len %d\n", lines, sent, int64(lines)-sent, s.len())
}
