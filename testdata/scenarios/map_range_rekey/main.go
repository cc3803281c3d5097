// Scenario map_range_rekey: a catalogue job opens a flash sale by adding a
// discounted "<sku>/sale" entry for every eligible SKU, inserting into the
// price map it is ranging over, and retires discontinued SKUs with delete in
// the same loop. Only one goroutine touches the map.
//
// This is legal Go, but the Go spec leaves it open whether an entry inserted
// during a range is visited later in the same range: some runs also discount
// the new sale entries ("<sku>/sale/sale", a double discount), and how many
// differs from run to run. Expected finding: map_write_during_range (info),
// nothing at warning or above.
package main

import (
	"fmt"
	"strings"
	"time"
)

type Catalogue struct {
	prices map[string]int64 // cents
}

func newCatalogue() *Catalogue {
	c := &Catalogue{prices: make(map[string]int64)}
	for i := 0; i < 400; i++ {
		c.prices[fmt.Sprintf("sku-%04d", i)] = int64(500 + i*13%4000)
	}
	return c
}

// base strips the "/sale" suffixes: "sku-0042/sale" -> "sku-0042".
func base(sku string) string {
	if i := strings.IndexByte(sku, '/'); i >= 0 {
		return sku[:i]
	}
	return sku
}

// eligible: every third SKU is on sale (and the rule has a depth guard).
func eligible(sku string) bool {
	b := base(sku)
	return b[len(b)-1]%3 == 0 && strings.Count(sku, "/sale") < 3
}

func discontinued(sku string) bool { return strings.HasSuffix(base(sku), "7") }

// openSale adds discounted entries and drops discontinued SKUs in one pass.
func (c *Catalogue) openSale(percent int64) {
	for sku, cents := range c.prices { // ghostrace:expect map_write_during_range
		if discontinued(sku) {
			delete(c.prices, sku)
			continue
		}
		if eligible(sku) {
			c.prices[sku+"/sale"] = cents * (100 - percent) / 100 // ghostrace:expect map_write_during_range
		}
	}
}

func main() {
	const rounds = 50
	minSale, maxSale, doubles := 1<<30, 0, 0
	for r := 0; r < rounds; r++ {
		time.Sleep(5 * time.Millisecond) // the job runs on a timer
		c := newCatalogue()
		c.openSale(20)
		sale, double := 0, 0
		for sku := range c.prices {
			if n := strings.Count(sku, "/sale"); n > 0 {
				sale++
				if n > 1 {
					double++
				}
			}
		}
		if sale < minSale {
			minSale = sale
		}
		if sale > maxSale {
			maxSale = sale
		}
		doubles += double
	}
	fmt.Printf("map_range_rekey: %d runs of the same sale job created between %d and %d sale entries (a fixed rule would give %d); %d double-discounted entries in total\n",
		rounds, minSale, maxSale, expected(), doubles)
}

// expected computes the intended result on a snapshot of the keys.
func expected() int {
	c := newCatalogue()
	n := 0
	for sku := range c.prices {
		if !discontinued(sku) && eligible(sku) {
			n++
		}
	}
	return n
}
