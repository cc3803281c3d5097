// Scenario list_foreign_move: a job scheduler keeps one container/list per
// priority and an index from job id to its element. Bumping a job to urgent
// "moves it to the front of the urgent queue" with urgent.MoveToFront(e) — but
// e is still an element of the normal queue, and container/list silently
// ignores MoveToFront of an element of another list.
//
// The ghost bug: no data race (one goroutine, no concurrency), just a call
// that does nothing. Bumped jobs stay in the normal queue and run late.
// Expected finding: list_foreign_element at the MoveToFront.
package main

import (
	"container/list"
	"fmt"
)

type job struct {
	id     int
	urgent bool
}

type scheduler struct {
	urgent, normal *list.List
	index          map[int]*list.Element
}

func (s *scheduler) submit(id int) {
	s.index[id] = s.normal.PushBack(&job{id: id})
}

// bump makes job id urgent.
func (s *scheduler) bump(id int) {
	e, ok := s.index[id]
	if !ok {
		return
	}
	e.Value.(*job).urgent = true
	s.urgent.MoveToFront(e) // ghostrace:expect list_foreign_element
}

// next pops the next job: urgent ones first.
func (s *scheduler) next() *job {
	for _, q := range []*list.List{s.urgent, s.normal} {
		if e := q.Front(); e != nil {
			j := q.Remove(e).(*job)
			delete(s.index, j.id)
			return j
		}
	}
	return nil
}

func main() {
	s := &scheduler{urgent: list.New(), normal: list.New(), index: map[int]*list.Element{}}
	late := 0
	for round := 0; round < 200; round++ {
		for i := 0; i < 20; i++ {
			s.submit(round*20 + i)
		}
		s.bump(round*20 + 17)
		// The first job out after a bump should be the bumped one.
		if j := s.next(); j != nil && !j.urgent {
			late++
		}
		for s.next() != nil {
		}
	}
	fmt.Printf("list_foreign_move: %d of 200 bumped jobs ran late\n", late)
}
