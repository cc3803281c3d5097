// Scenario list_deferred_double_remove_fixed: the server of
// list_deferred_double_remove with the fix. Begin hands out a ticket and End
// releases it at most once (the ticket records that it was released, under
// the tracker's mutex), so the early release on the error path and the
// deferred one no longer both remove the element. Expected findings: none.
package main

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"
)

type Request struct {
	ID   int
	Path string
}

type Tracker struct {
	mu       sync.Mutex
	inflight *list.List
	gauge    int // exported as http_requests_in_flight
}

// ticket is a registered request; released says End already ran.
type ticket struct {
	e        *list.Element
	released bool
}

func (t *Tracker) Begin(r *Request) *ticket {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gauge++
	return &ticket{e: t.inflight.PushBack(r)}
}

// End releases the request; calling it again is a no-op.
func (t *Tracker) End(tk *ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tk.released {
		return
	}
	tk.released = true
	t.inflight.Remove(tk.e)
	t.gauge--
}

func (t *Tracker) Snapshot() (gauge, listed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gauge, t.inflight.Len()
}

type Server struct {
	tracker *Tracker
	mu      sync.Mutex
	errs    int
}

var errBackend = errors.New("backend unavailable")

func (s *Server) backend(r *Request) error {
	if r.ID%9 == 4 {
		return errBackend
	}
	return nil
}

func (s *Server) Handle(r *Request) error {
	tk := s.tracker.Begin(r)
	defer s.tracker.End(tk)
	if err := s.backend(r); err != nil {
		s.tracker.End(tk) // release early; the deferred End is then a no-op
		s.mu.Lock()
		s.errs++
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", r.Path, err)
	}
	return nil
}

func main() {
	s := &Server{tracker: &Tracker{inflight: list.New()}}
	const workers, perWorker = 4, 2500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := w*perWorker + i
				_ = s.Handle(&Request{ID: id, Path: fmt.Sprintf("/orders/%d", id)})
				if i%100 == 99 {
					time.Sleep(10 * time.Millisecond) // wait for the next batch of connections
				}
			}
		}(w)
	}
	wg.Wait()
	gauge, listed := s.tracker.Snapshot()
	fmt.Printf("list_deferred_double_remove_fixed: %d requests, %d backend errors; in-flight gauge reads %d with %d requests listed\n",
		workers*perWorker, s.errs, gauge, listed)
}
