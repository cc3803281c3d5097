// Command demo-service is a small order-processing service with two ghost bugs that
// tests never catch: workers append to sub-slices of one shared batch (each worker's
// appends overwrite its neighbour's orders), and a cancelled order's queue element is
// removed twice (the second Remove silently does nothing).
package main

import (
	"container/list"
	"fmt"
	"sync"
)

type order struct {
	id     int
	amount int
}

// splitBatch hands each worker a window of one backing array. Each window keeps the
// array's spare capacity, so appending through it writes into the next window.
func splitBatch(batch []order, workers int) [][]order {
	per := len(batch) / workers
	parts := make([][]order, workers)
	for w := range parts {
		parts[w] = batch[w*per : (w+1)*per] // bug: should be batch[w*per:(w+1)*per:(w+1)*per]
	}
	return parts
}

// enrich adds fee lines; the appends run through the neighbours' windows before the
// slice finally outgrows the shared array.
func enrich(part []order, wg *sync.WaitGroup, start chan struct{}) {
	defer wg.Done()
	<-start
	for i := 0; i < 60; i++ {
		part = append(part, order{id: -1, amount: 1})
	}
}

type queue struct {
	pending *list.List
	byID    map[int]*list.Element
}

func (q *queue) cancel(id int) {
	e := q.byID[id]
	defer q.pending.Remove(e) // bug: the caller also removes it below
	q.pending.Remove(e)
}

func main() {
	clobbered := 0
	for round := 0; round < 200; round++ {
		batch := make([]order, 48, 64)
		for i := range batch {
			batch[i] = order{id: i, amount: 10}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, part := range splitBatch(batch, 4) {
			wg.Add(1)
			go enrich(part, &wg, start)
		}
		close(start)
		wg.Wait()
		for i := range batch {
			if batch[i].id != i {
				clobbered++
			}
		}
	}
	q := &queue{pending: list.New(), byID: map[int]*list.Element{}}
	for i := 0; i < 100; i++ {
		q.byID[i] = q.pending.PushBack(i)
	}
	for i := 0; i < 100; i += 10 {
		q.cancel(i)
	}
	fmt.Printf("demo-service: %d orders overwritten by a neighbour's append, %d orders still queued\n", clobbered, q.pending.Len())
}
