// Scenario clean_zero_capacity (must stay silent): request handlers that
// start their per-request slices empty, in the usual ways: make([]T, 0),
// []T{}, a nil slice, and the pre-1.21 clone idiom append(s[:0:0], s...)
// applied to a shared, read-only default header list. An empty slice made
// with make or a literal points at the runtime's shared zero-size base, and
// s[:0:0] keeps the original pointer with capacity 0, so many goroutines
// "grow the same array" at the same length at the same time, yet nothing is
// shared: every first append allocates a fresh array. Expected findings: none.
package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

type Header struct{ Name, Value string }

// defaultHeaders is read-only after init and cloned by every response.
var defaultHeaders = []Header{
	{"Server", "ghost/1.0"}, {"Cache-Control", "no-store"}, {"X-Frame-Options", "DENY"},
}

type Response struct {
	Status  int
	Headers []Header
	Body    []string
	Errors  []error
}

func handle(path string, n int) *Response {
	r := &Response{Status: 200}
	r.Headers = append(defaultHeaders[:0:0], defaultHeaders...) // clone
	r.Headers = append(r.Headers, Header{"Content-Type", "application/json"})
	r.Body = make([]string, 0)
	for _, part := range strings.Split(path, "/") {
		if part != "" {
			r.Body = append(r.Body, part)
		}
	}
	tags := []string{}
	if n%3 == 0 {
		tags = append(tags, "sampled")
	}
	r.Body = append(r.Body, tags...)
	if n%5 == 0 {
		r.Errors = append(r.Errors, fmt.Errorf("slow upstream for %s", path))
	}
	return r
}

func main() {
	const handlers, perHandler = 6, 5000
	var start, wg sync.WaitGroup
	start.Add(1)
	out := make([]int, handlers)
	for h := 0; h < handlers; h++ {
		wg.Add(1)
		go func(h int) {
			defer wg.Done()
			start.Wait()
			for i := 0; i < perHandler; i++ {
				r := handle(fmt.Sprintf("/v1/users/%d/orders", i%100), i)
				out[h] += len(r.Headers) + len(r.Body) + len(r.Errors)
				if i%500 == 499 {
					time.Sleep(25 * time.Millisecond)
				}
			}
		}(h)
	}
	start.Done()
	wg.Wait()
	sum := 0
	for _, n := range out {
		sum += n
	}
	fmt.Printf("clean_zero_capacity: %d responses built from empty slices, %d elements appended, shared defaults still %d headers\n",
		handlers*perHandler, sum, len(defaultHeaders))
}
