// Scenario list_deferred_double_remove: an HTTP-style server tracks its
// in-flight requests in a container/list (for graceful shutdown) plus an
// "in flight" gauge, both behind a mutex. The handler registers the request
// and defers its release; on a backend error it also releases early "so the
// slot is free while we log and back off".
//
// The ghost bug: on the error path the element is removed twice. The second
// Remove finds e.list == nil and silently does nothing, but the gauge is
// decremented again, so it drifts below zero. No data race: everything is
// under the mutex. Expected finding: list_stale_remove (Remove of an element
// that was already removed).
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

func (t *Tracker) Begin(r *Request) *list.Element {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gauge++
	return t.inflight.PushBack(r)
}

func (t *Tracker) End(e *list.Element) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight.Remove(e) // ghostrace:expect list_stale_remove
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
	e := s.tracker.Begin(r)
	defer s.tracker.End(e)
	if err := s.backend(r); err != nil {
		s.tracker.End(e) // release early; BUG: the deferred End runs too
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
	fmt.Printf("list_deferred_double_remove: %d requests, %d backend errors; in-flight gauge reads %d with %d requests listed (double releases)\n",
		workers*perWorker, s.errs, gauge, listed)
}
