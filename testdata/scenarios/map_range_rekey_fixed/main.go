// Scenario map_range_rekey_fixed: the sale job of map_range_rekey with the
// fix. The pass over the price map only reads it and records what to change;
// the inserts and deletes are applied afterwards by ranging over the change
// lists, so the result is the same on every run. Expected findings: none.
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

// openSale decides on a read-only pass, then applies the changes.
func (c *Catalogue) openSale(percent int64) {
	var retire []string
	add := make(map[string]int64)
	for sku, cents := range c.prices {
		if discontinued(sku) {
			retire = append(retire, sku)
			continue
		}
		if eligible(sku) {
			add[sku+"/sale"] = cents * (100 - percent) / 100
		}
	}
	for _, sku := range retire {
		delete(c.prices, sku)
	}
	for sku, cents := range add {
		c.prices[sku] = cents
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
	fmt.Printf("map_range_rekey_fixed: %d runs of the same sale job created between %d and %d sale entries (a fixed rule would give %d); %d double-discounted entries in total\n",
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
