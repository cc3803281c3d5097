// Scenario clean_channel_handover (must stay silent): an ETL pipeline. The
// reader stage builds batches of rows with append and sends each batch down a
// channel; the enrich stage appends derived rows to the batch it received and
// sends it on; the writer stage appends a trailer row. Ownership of a batch
// moves with the channel send: the sender never touches it again, so every
// backing array is grown by one goroutine at a time, in order. Expected
// findings: none.
package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

type Row struct {
	Key   string
	Value float64
	Tag   string
}

// Batch is owned by exactly one stage at a time.
type Batch[T any] struct {
	Seq  int
	Rows []T
}

func read(out chan<- Batch[Row], batches int) {
	defer close(out)
	for b := 0; b < batches; b++ {
		var rows []Row
		for i := 0; i < 50+b%30; i++ {
			rows = append(rows, Row{Key: fmt.Sprintf("k%05d", b*100+i), Value: float64(i) * 1.5})
		}
		out <- Batch[Row]{Seq: b, Rows: rows}
		if b%20 == 19 {
			time.Sleep(5 * time.Millisecond) // next file
		}
	}
}

func enrich(in <-chan Batch[Row], out chan<- Batch[Row]) {
	defer close(out)
	for b := range in {
		n := len(b.Rows)
		for i := 0; i < n; i++ {
			if b.Rows[i].Value > 30 {
				b.Rows = append(b.Rows, Row{Key: b.Rows[i].Key + ".hi", Value: b.Rows[i].Value, Tag: "derived"})
			}
		}
		out <- b
	}
}

func write(in <-chan Batch[Row], wg *sync.WaitGroup, total *int) {
	defer wg.Done()
	var sb strings.Builder
	for b := range in {
		b.Rows = append(b.Rows, Row{Key: fmt.Sprintf("trailer-%d", b.Seq), Tag: "trailer"})
		for _, r := range b.Rows {
			sb.WriteString(r.Key)
		}
		*total += len(b.Rows)
		sb.Reset()
	}
}

func main() {
	raw := make(chan Batch[Row], 4)
	enriched := make(chan Batch[Row], 4)
	var wg sync.WaitGroup
	total := 0
	wg.Add(1)
	go read(raw, 600)
	go enrich(raw, enriched)
	go write(enriched, &wg, &total)
	wg.Wait()
	fmt.Printf("clean_channel_handover: 600 batches through read -> enrich -> write, %d rows written\n", total)
}
