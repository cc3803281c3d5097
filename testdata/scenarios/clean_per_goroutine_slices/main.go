// Scenario clean_per_goroutine_slices (must stay silent): a log-analysis
// worker pool. Each worker tokenises the log lines it receives into slices it
// allocates itself, builds a per-worker histogram slice, and returns a
// summary; no slice is shared between goroutines while it grows. Expected
// findings: none.
package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

type summary struct {
	worker int
	lines  int
	top    []string
}

type worker struct {
	id     int
	tokens []string // scratch owned by this worker
	counts map[string]int
}

func (w *worker) handle(line string) {
	w.tokens = w.tokens[:0]
	for _, f := range strings.Fields(line) {
		w.tokens = append(w.tokens, strings.ToLower(f))
	}
	for _, t := range w.tokens {
		w.counts[t]++
	}
}

func (w *worker) summary(lines int) summary {
	var keys []string
	for k := range w.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return w.counts[keys[i]] > w.counts[keys[j]] || (w.counts[keys[i]] == w.counts[keys[j]] && keys[i] < keys[j])
	})
	if len(keys) > 3 {
		keys = keys[:3]
	}
	return summary{worker: w.id, lines: lines, top: keys}
}

func main() {
	words := []string{"GET", "POST", "/api", "/login", "200", "404", "500", "slow", "cache", "miss", "hit", "user"}
	lines := make(chan string, 64)
	results := make(chan summary)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			w := &worker{id: id, counts: map[string]int{}}
			n := 0
			for l := range lines {
				w.handle(l)
				n++
			}
			results <- w.summary(n)
		}(i)
	}
	go func() {
		for i := 0; i < 40000; i++ {
			var parts []string
			for k := 0; k < 3+i%6; k++ {
				parts = append(parts, words[(i*7+k*3)%len(words)])
			}
			lines <- strings.Join(parts, " ")
			if i%2000 == 1999 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		close(lines)
		wg.Wait()
		close(results)
	}()
	total := 0
	var tops []string
	for s := range results {
		total += s.lines
		tops = append(tops, strings.Join(s.top, ","))
	}
	sort.Strings(tops)
	fmt.Printf("clean_per_goroutine_slices: 4 workers tokenised %d lines; top words per worker: %s\n", total, strings.Join(tops, " | "))
}
