// Scenario shared_append_lost: a payments service keeps an in-memory journal
// of postings per merchant. A request handler takes the merchant's journal,
// numbers its posting after the current length, runs the fraud check on large
// amounts (a remote call: the goroutine parks) and appends the posting:
// j.entries = append(entries, p). Nothing serialises the handlers.
//
// The ghost bug: handlers that took the same journal header all append to it;
// only the last store survives, so postings are lost and their sequence
// numbers are handed out again. When the shared header is full, two or more
// handlers grow the same backing array at the same length a few microseconds
// apart and each publishes its own copy; the survivor is grown again later by
// whichever handler comes next. Expected finding: slice_lost_append.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

type Posting struct {
	Seq     int
	Handler int
	Account int
	Cents   int64
}

type Journal struct {
	entries []Posting
}

// Post records one posting and returns its sequence number.
func (j *Journal) Post(handler, account int, cents int64) int {
	entries := j.entries // this request's view of the journal
	p := Posting{Seq: len(entries), Handler: handler, Account: account, Cents: cents}
	if cents >= 50000 {
		fraudCheck(p)
	}
	j.entries = append(entries, p) // ghostrace:expect slice_lost_append
	return p.Seq
}

// fraudCheck stands in for the remote call: the handler's goroutine parks
// and other requests run meanwhile.
func fraudCheck(p Posting) {
	runtime.Gosched()
}

const (
	merchants = 16
	handlers  = 4
	burst     = 100
	minBursts = 20
	budget    = 600 * time.Millisecond
)

type Service struct {
	journals [merchants]Journal
}

// serve is one handler goroutine: bursts of requests from the queue, with a
// short wait for the next burst.
func (s *Service) serve(h int, begin time.Time) (posted int) {
	for b := 0; b < minBursts || time.Since(begin) < budget; b++ {
		for i := 0; i < burst; i++ {
			n := b*burst + i
			account := (n*31 + h*7) % 1000
			cents := int64((n*7919 + h*104729) % 90000)
			s.journals[account%merchants].Post(h, account, cents)
			posted++
		}
		time.Sleep(time.Millisecond)
	}
	return posted
}

func main() {
	s := &Service{}
	var start, done sync.WaitGroup
	start.Add(1)
	var posted [handlers]int
	begin := time.Now()
	for h := 0; h < handlers; h++ {
		done.Add(1)
		go func(h int) {
			defer done.Done()
			start.Wait()
			posted[h] = s.serve(h, begin)
		}(h)
	}
	start.Done()
	done.Wait()

	total, kept := 0, 0
	for _, n := range posted {
		total += n
	}
	for i := range s.journals {
		kept += len(s.journals[i].entries)
	}
	fmt.Printf("shared_append_lost: %d postings accepted by %d handlers, %d journals hold %d: %d postings lost\n",
		total, handlers, merchants, kept, total-kept)
}
