// Scenario clean_template_copy (must stay silent): a job runner builds the
// command line for every job from a shared, read-only template of base
// arguments with a full slice expression: append(base[:n:n], jobArgs...).
// Because the copy's capacity ends at the template's length, every append
// reallocates; many goroutines grow the template's backing array at the same
// length at the same time, but they only read it. Expected findings: none at
// warning or above; slice_stale_header (info) may fire, since the template
// keeps being grown long after its first growth.
package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

type Runner struct {
	base []string // read-only after construction
}

func NewRunner(binary string) *Runner {
	return &Runner{base: []string{binary, "--log-format=json", "--timeout=30s", "--retries=2"}}
}

// Command returns the argument vector for one job.
func (r *Runner) Command(job string, extra ...string) []string {
	n := len(r.base)
	args := append(r.base[:n:n], "--job="+job)
	return append(args, extra...)
}

func main() {
	r := NewRunner("/usr/bin/transcode")
	const workers, perWorker = 6, 4000
	var start, wg sync.WaitGroup
	start.Add(1)
	lengths := make([]int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			start.Wait()
			for i := 0; i < perWorker; i++ {
				job := fmt.Sprintf("video-%d-%d", w, i)
				var cmd []string
				if i%2 == 0 {
					cmd = r.Command(job, "--preset=fast")
				} else {
					cmd = r.Command(job, "--preset=slow", "--crf=18")
				}
				lengths[w] += len(strings.Join(cmd, " "))
				if i%400 == 399 {
					time.Sleep(30 * time.Millisecond)
				}
			}
		}(w)
	}
	start.Done()
	wg.Wait()
	total := 0
	for _, n := range lengths {
		total += n
	}
	fmt.Printf("clean_template_copy: %d command lines built from one template (%d bytes); template intact: %v\n",
		workers*perWorker, total, strings.Join(r.base, " ") == "/usr/bin/transcode --log-format=json --timeout=30s --retries=2")
}
