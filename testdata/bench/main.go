// Command bench is the workload of `cargo xtask bench` (xtask/src/bench). One mode
// per run; it times its own loop and prints `loop_ns=N` so that the set-up of a
// tracer (reading the binary, attaching probes) is not counted, then a checksum
// that must not change under tracing. With `repeat` it runs the loop until killed,
// one line per loop (`batch_ns=N cpu_ns=N checksum=N`; the JSON workers each time
// their own share), for a tracer that attaches and detaches while it runs:
//
//	append N   N rounds of appending 64 ints to a fresh slice: every growth is a
//	           call into runtime.growslice from main
//	map N      N writes and N/4 deletes on a map of main's own, through the
//	           runtime's fast64 assign/delete variants
//	json N     a request loop on 2 workers: decode an order (JSON), price it, keep
//	           per-worker counters and a bounded log, encode the reply. Each
//	           worker's state is its own (nothing shared); nearly every slice and
//	           map operation happens inside encoding/json and reflect.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var sink []int

//go:noinline
func appendLoop(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		var s []int
		for j := 0; j < 64; j++ {
			s = append(s, j)
		}
		sink = s
		total += len(s)
	}
	return total
}

//go:noinline
func mapLoop(n int) int {
	m := make(map[int]int)
	for i := 0; i < n; i++ {
		m[i%4096] = i
		if i%4 == 0 {
			delete(m, (i/4)%4096)
		}
	}
	return len(m)
}

type item struct {
	SKU      string  `json:"sku"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

type order struct {
	ID       int               `json:"id"`
	Customer string            `json:"customer"`
	Tier     string            `json:"tier"`
	Items    []item            `json:"items"`
	Meta     map[string]string `json:"meta"`
}

type reply struct {
	ID       int     `json:"id"`
	Total    float64 `json:"total"`
	Items    int     `json:"items"`
	Discount float64 `json:"discount"`
}

// worker is one request handler's private state.
type worker struct {
	byTier map[string]int
	log    []int
	bytes  int
}

var tiers = []string{"free", "pro", "enterprise"}

func request(i int) []byte {
	o := order{ID: i, Customer: "c" + strconv.Itoa(i%1000), Tier: tiers[i%3], Meta: map[string]string{"region": "eu", "channel": "web"}}
	for k := 0; k < 12; k++ {
		o.Items = append(o.Items, item{SKU: "sku-" + strconv.Itoa(k*7+i%5), Quantity: 1 + k%3, Price: 2.5 + float64(k)})
	}
	b, err := json.Marshal(&o)
	if err != nil {
		panic(err)
	}
	return b
}

//go:noinline
func (w *worker) handle(body []byte) {
	var o order
	if err := json.Unmarshal(body, &o); err != nil {
		panic(err)
	}
	r := reply{ID: o.ID, Items: len(o.Items)}
	for _, it := range o.Items {
		r.Total += float64(it.Quantity) * it.Price
	}
	if o.Tier == "enterprise" {
		r.Discount = r.Total / 10
	}
	w.byTier[o.Tier]++
	w.log = append(w.log, o.ID)
	if len(w.log) == 1024 {
		w.log = w.log[:0]
	}
	out, err := json.Marshal(&r)
	if err != nil {
		panic(err)
	}
	w.bytes += len(out)
}

const jsonWorkers = 2

// bodies are the requests the JSON loop decodes, prepared before any clock starts:
// the loop is decode, work, encode.
func bodies() [][]byte {
	b := make([][]byte, 64)
	for i := range b {
		b[i] = request(i)
	}
	return b
}

func jsonLoop(n int) int {
	reqs := bodies()
	ws := make([]*worker, jsonWorkers)
	var wg sync.WaitGroup
	for g := 0; g < jsonWorkers; g++ {
		ws[g] = &worker{byTier: map[string]int{}}
		wg.Add(1)
		go func(w *worker, g int) {
			defer wg.Done()
			for i := g; i < n; i += jsonWorkers {
				w.handle(reqs[i%len(reqs)])
			}
		}(ws[g], g)
	}
	wg.Wait()
	total := 0
	for _, w := range ws {
		total += w.bytes + w.byTier["pro"]
	}
	return total
}

// repeatJSON runs the JSON workers without end, each timing its own batches of
// n/2 requests: the workers never wait for each other, as in a service.
func repeatJSON(n int) {
	reqs := bodies()
	for g := 0; g < jsonWorkers; g++ {
		go func() {
			w := &worker{byTier: map[string]int{}}
			repeat(func() int {
				before := w.bytes
				for i := 0; i < n/jsonWorkers; i++ {
					w.handle(reqs[i%len(reqs)])
				}
				return w.bytes - before
			})
		}()
	}
	select {}
}

// repeat runs batch until the process is killed, one line per run.
func repeat(batch func() int) {
	for {
		cpu, start := cpuNs(), time.Now()
		sum := batch()
		fmt.Printf("batch_ns=%d cpu_ns=%d checksum=%d\n", time.Since(start).Nanoseconds(), cpuNs()-cpu, sum)
	}
}

// cpuNs is the CPU time the process has used, user and system (traps included),
// on every thread (the garbage collector's too).
func cpuNs() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		panic(err)
	}
	return u.Utime.Nano() + u.Stime.Nano()
}

func main() {
	repeating := len(os.Args) == 4 && os.Args[3] == "repeat"
	if len(os.Args) != 3 && !repeating {
		fmt.Fprintln(os.Stderr, "usage: bench append|map|json N [repeat]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: N must be a number")
		os.Exit(2)
	}
	var loop func(int) int
	switch os.Args[1] {
	case "append":
		loop = appendLoop
	case "map":
		loop = mapLoop
	case "json":
		loop = jsonLoop
	default:
		fmt.Fprintln(os.Stderr, "bench: unknown mode", os.Args[1])
		os.Exit(2)
	}
	switch {
	case !repeating:
		start := time.Now()
		sum := loop(n)
		fmt.Printf("loop_ns=%d\nchecksum=%d\n", time.Since(start).Nanoseconds(), sum)
	case os.Args[1] == "json":
		repeatJSON(n)
	default:
		repeat(func() int { return loop(n) })
	}
}
