// Scenario batch_subslice_overlap_fixed: the billing run of
// batch_subslice_overlap with the fix. Each customer's part is cut with a full
// slice expression, page[lo:hi:hi], so its capacity ends where the customer's
// lines end: the worker's first append reallocates into an array of its own
// and no worker can write into a neighbour's invoice. Every grown array is
// grown by one goroutine only. Expected findings: none.
package main

import (
	"fmt"
	"os"
	"time"
)

type Line struct {
	Customer int
	Kind     byte // 'I' item, 'X' tax, 'F' fee, 'T' total
	SKU      int
	Cents    int64
}

const (
	customers    = 6
	linesPerCust = 100
	minBatches   = 40
	budget       = 600 * time.Millisecond
)

// loadPage stands in for the database read: all customers' lines, grouped by
// customer, in one slice with 1/8 spare capacity.
func loadPage(batch int) []Line {
	time.Sleep(10 * time.Millisecond) // query latency
	n := customers * linesPerCust
	page := make([]Line, 0, n+n/8)
	for c := 0; c < customers; c++ {
		for i := 0; i < linesPerCust; i++ {
			page = append(page, Line{
				Customer: c,
				Kind:     'I',
				SKU:      batch*100000 + c*1000 + i,
				Cents:    int64(100 + (i*37+c*11+batch)%900),
			})
		}
	}
	return page
}

// invoice appends the derived lines to the customer's lines and returns the
// finished invoice.
func invoice(lines []Line) []Line {
	items := len(lines)
	var total int64
	for i := 0; i < items; i++ {
		it := lines[i]
		tax := it.Cents * 19 / 100
		fee := int64(25)
		lines = append(lines, Line{Customer: it.Customer, Kind: 'X', SKU: it.SKU, Cents: tax})
		lines = append(lines, Line{Customer: it.Customer, Kind: 'F', SKU: it.SKU, Cents: fee})
		total += it.Cents + tax + fee
	}
	return append(lines, Line{Customer: lines[0].Customer, Kind: 'T', Cents: total})
}

// shard is a long-lived worker; customer c is always billed by shard c.
type shard struct {
	in  chan []Line
	out chan []Line
}

func (s *shard) run() {
	for part := range s.in {
		s.out <- invoice(part)
	}
}

type billing struct {
	shards [customers]*shard
}

func newBilling() *billing {
	b := &billing{}
	for i := range b.shards {
		s := &shard{in: make(chan []Line), out: make(chan []Line)}
		b.shards[i] = s
		go s.run()
	}
	return b
}

func (b *billing) stop() {
	for _, s := range b.shards {
		close(s.in)
	}
}

// runBatch bills one page and returns how many invoice lines differ from a
// single-threaded reference run, and how many invoices were affected.
func (b *billing) runBatch(batch int) (badLines, badInvoices int) {
	page := loadPage(batch)
	var want [customers][]Line
	for c := 0; c < customers; c++ {
		own := make([]Line, linesPerCust, 3*linesPerCust+1)
		copy(own, page[c*linesPerCust:(c+1)*linesPerCust])
		want[c] = invoice(own)
	}
	for c, s := range b.shards {
		lo, hi := c*linesPerCust, (c+1)*linesPerCust
		s.in <- page[lo:hi:hi] // full slice expression: the first append reallocates
	}
	for c, s := range b.shards {
		got := <-s.out
		diff := 0
		for i := range want[c] {
			if i >= len(got) || got[i] != want[c][i] {
				diff++
			}
		}
		if diff > 0 {
			badInvoices++
			badLines += diff
		}
	}
	return badLines, badInvoices
}

func main() {
	b := newBilling()
	defer b.stop()
	start := time.Now()
	batches, badLines, badInvoices := 0, 0, 0
	for batches < minBatches || time.Since(start) < budget {
		l, i := b.runBatch(batches)
		badLines += l
		badInvoices += i
		batches++
	}
	fmt.Printf("batch_subslice_overlap_fixed: %d batches x %d invoices: %d invoices wrong, %d invoice lines differ from the reference\n",
		batches, customers, badInvoices, badLines)
	if badLines != 0 {
		fmt.Fprintln(os.Stderr, "batch_subslice_overlap_fixed: invoices differ from the reference (unexpected)")
		os.Exit(1)
	}
}
