// Scenario batch_subslice_overlap: a billing run loads one page of invoice
// lines for several customers into a single slice (the loader leaves spare
// capacity "for late additions"), cuts it into one sub-slice per customer and
// hands each to a shard worker that appends a tax line and a fee line per item
// plus a closing total.
//
// The ghost bug: every sub-slice lines[lo:hi] still has the capacity of the
// whole page behind it, so a worker's appends land on top of the next
// customer's lines instead of in a fresh array. The last two workers outgrow
// the page and reallocate; the others silently write into each other's
// invoices. Expected finding: slice_capacity_overlap (two goroutines grow
// sub-slices of one backing array, with different starts).
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
		lines = append(lines, Line{Customer: it.Customer, Kind: 'X', SKU: it.SKU, Cents: tax}) // ghostrace:expect slice_capacity_overlap
		lines = append(lines, Line{Customer: it.Customer, Kind: 'F', SKU: it.SKU, Cents: fee}) // ghostrace:expect slice_capacity_overlap
		total += it.Cents + tax + fee
	}
	return append(lines, Line{Customer: lines[0].Customer, Kind: 'T', Cents: total}) // ghostrace:expect slice_capacity_overlap
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
		s.in <- page[lo:hi] // BUG: shares the page's spare capacity
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
	fmt.Printf("batch_subslice_overlap: %d batches x %d invoices: %d invoices wrong, %d invoice lines clobbered by neighbouring workers\n",
		batches, customers, badInvoices, badLines)
	if badLines == 0 {
		fmt.Fprintln(os.Stderr, "batch_subslice_overlap: no clobbering observed (unexpected)")
	}
}
