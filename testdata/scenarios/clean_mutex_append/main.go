// Scenario clean_mutex_append (must stay silent): an access-log sink. Many
// request goroutines append records to one shared buffer, always under the
// sink's mutex; a flusher swaps the buffer out under the same mutex every
// 20 ms and writes the batch. Every append sees the header the previous one
// stored, so each backing array is grown once, by whichever goroutine holds
// the lock. Expected findings: none.
package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

type Record struct {
	Method string
	Path   string
	Status int
	Micros int64
}

type Sink struct {
	mu      sync.Mutex
	buf     []Record
	flushed int
	batches int
}

func (s *Sink) Log(r Record) {
	s.mu.Lock()
	s.buf = append(s.buf, r)
	s.mu.Unlock()
}

func (s *Sink) Flush(w io.Writer) {
	s.mu.Lock()
	batch := s.buf
	s.buf = nil
	s.mu.Unlock()
	for _, r := range batch {
		fmt.Fprintf(w, "%s %s %d %dus\n", r.Method, r.Path, r.Status, r.Micros)
	}
	s.flushed += len(batch)
	s.batches++
}

func main() {
	s := &Sink{}
	const clients, perClient = 8, 4000
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.Flush(io.Discard)
			case <-stop:
				s.Flush(io.Discard)
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				s.Log(Record{Method: "GET", Path: fmt.Sprintf("/items/%d", i%300), Status: 200 + (i%7)*50%300, Micros: int64(100 + (i*c)%900)})
				if i%200 == 199 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(c)
	}
	wg.Wait()
	close(stop)
	<-flushed
	fmt.Printf("clean_mutex_append: %d clients logged %d records, %d flushed in %d batches\n",
		clients, clients*perClient, s.flushed, s.batches)
}
