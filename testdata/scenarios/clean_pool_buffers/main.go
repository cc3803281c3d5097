// Scenario clean_pool_buffers (must stay silent at warning): an encoder that
// formats responses into scratch byte buffers recycled through a sync.Pool.
// A buffer is used by one goroutine at a time, reset with buf[:0] and put
// back; the next goroutine that gets it appends into the same backing array
// and may grow it. Expected findings: none at warning or above; a recycled
// buffer grown by another goroutine later may show as slice_stale_header
// (info, "possible").
package main

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

type Encoder struct {
	pool sync.Pool
}

func NewEncoder() *Encoder {
	e := &Encoder{}
	e.pool.New = func() any {
		b := make([]byte, 0, 64)
		return &b
	}
	return e
}

type Order struct {
	ID    int
	Items []string
	Cents int64
}

// Encode appends a JSON rendering of o to a pooled buffer and returns a copy.
func (e *Encoder) Encode(o Order) string {
	bp := e.pool.Get().(*[]byte)
	buf := (*bp)[:0]
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, int64(o.ID), 10)
	buf = append(buf, `,"items":[`...)
	for i, it := range o.Items {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, it)
	}
	buf = append(buf, `],"cents":`...)
	buf = strconv.AppendInt(buf, o.Cents, 10)
	buf = append(buf, '}')
	s := string(buf)
	*bp = buf
	e.pool.Put(bp)
	return s
}

func main() {
	enc := NewEncoder()
	var wg sync.WaitGroup
	bytes := make([]int, 6)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				items := make([]string, 1+(i*g)%12)
				for k := range items {
					items[k] = fmt.Sprintf("sku-%d", (i+k)%500)
				}
				bytes[g] += len(enc.Encode(Order{ID: i, Items: items, Cents: int64(i * 99)}))
				if i%300 == 299 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	total := 0
	for _, b := range bytes {
		total += b
	}
	fmt.Printf("clean_pool_buffers: 18000 orders encoded through pooled buffers, %d bytes of JSON\n", total)
}
