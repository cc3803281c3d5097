// Scenario config_reload_stale: an API gateway whose routing table is
// extended at run time by a config watcher (g.routes = append(g.routes, r)),
// while long-lived client sessions copy the table header when they connect
// and later add a sticky route of their own to that copy.
//
// The ghost bugs: a session keeps serving from the table it saw at connect
// time (routes added later never reach it), and when its stale header still
// has spare capacity its sticky route is written into the live table's
// backing array, replacing a route the watcher had added. When the stale
// header is full, the session's append grows an array the watcher already
// moved away from hundreds of milliseconds earlier. Expected finding:
// slice_stale_header (info): an array grown again by another goroutine well
// after it was first grown. The schedule keeps >= 500 ms between the two
// growths of the same array so that they never look simultaneous.
package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

type Route struct {
	Prefix  string
	Backend string
}

type Gateway struct {
	routes []Route // written by the watcher, read by sessions; no synchronisation
}

// reload is the config watcher's update: one new route per change event.
func (g *Gateway) reload(r Route) {
	g.routes = append(g.routes, r) // ghostrace:expect slice_stale_header
}

type Session struct {
	id     int
	routes []Route // the table as it was at connect time
	served int
	misses int
}

func (g *Gateway) connect(id int) *Session {
	return &Session{id: id, routes: g.routes}
}

// pin adds the session's sticky backend in front of the shared table.
func (s *Session) pin(backend string) {
	s.routes = append(s.routes, Route{Prefix: fmt.Sprintf("/session/%d", s.id), Backend: backend}) // ghostrace:expect slice_stale_header
}

func (s *Session) handle(path string) string {
	s.served++
	best := ""
	for _, r := range s.routes {
		if strings.HasPrefix(path, r.Prefix) && len(r.Prefix) > len(best) {
			best = r.Prefix
		}
	}
	if best == "" {
		s.misses++
	}
	return best
}

var epoch = time.Now()

// at sleeps until ms milliseconds after program start.
func at(ms int) {
	if d := time.Until(epoch.Add(time.Duration(ms) * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// serve runs a session from connect to pin to close, handling a request every
// 20 ms for paths of the services added so far.
func serve(g *Gateway, wg *sync.WaitGroup, out **Session, id, connectAt, pinAt, closeAt int) {
	defer wg.Done()
	at(connectAt)
	s := g.connect(id)
	*out = s
	pinned := false
	for t := connectAt; t < closeAt; t += 20 {
		at(t)
		if !pinned && t >= pinAt {
			s.pin(fmt.Sprintf("pod-%c", 'a'+id))
			pinned = true
		}
		s.handle(fmt.Sprintf("/svc%d/orders", 5+(t/60)%15))
	}
}

func main() {
	g := &Gateway{routes: []Route{
		{"/svc1", "users:8080"}, {"/svc2", "orders:8080"},
		{"/svc3", "billing:8080"}, {"/svc4", "search:8080"},
	}} // len 4, cap 4

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // config watcher: a change every 60 ms
		defer wg.Done()
		for n := 5; n <= 19; n++ {
			at(60 * (n - 4))
			g.reload(Route{fmt.Sprintf("/svc%d", n), fmt.Sprintf("svc%d:8080", n)})
		}
	}()
	// Watcher growths: t=60 (cap 4 -> 8), t=300 (8 -> 16), t=780 (16 -> 32).
	// Sessions tick at t = 10 (mod 20) so they never wake together with it.
	var s1, s2, s3 *Session
	wg.Add(3)
	go serve(g, &wg, &s1, 1, 10, 650, 960)  // holds the cap-4 array, grows it at t=650
	go serve(g, &wg, &s2, 2, 150, 210, 960) // holds the cap-8 array at len 6: pins into the live table
	go serve(g, &wg, &s3, 3, 270, 900, 960) // holds the full cap-8 array, grows it at t=900
	wg.Wait()

	lost := []string{}
	for n := 5; n <= 19; n++ {
		want := fmt.Sprintf("/svc%d", n)
		found := false
		for _, r := range g.routes {
			if r.Prefix == want {
				found = true
			}
		}
		if !found {
			lost = append(lost, want)
		}
	}
	stale := 0
	for _, s := range []*Session{s1, s2, s3} {
		if len(s.routes) < len(g.routes) {
			stale++
		}
	}
	fmt.Printf("config_reload_stale: live table has %d routes, routes overwritten by session pins: %v; %d of 3 sessions still route with an old table (%d, %d, %d entries); %d of %d requests found no route\n",
		len(g.routes), lost, stale, len(s1.routes), len(s2.routes), len(s3.routes),
		s1.misses+s2.misses+s3.misses, s1.served+s2.served+s3.served)
}
