// Scenario map_concurrent_writes_crash: a session store where login handlers
// insert sessions and logout handlers delete them, all on one plain map with
// no lock.
//
// The ghost bug here is not silent: two handlers write the map at the same
// moment, the runtime notices its own "writing" flag and kills the process
// with "fatal error: concurrent map writes" (exit status 2). This is the
// designated crash program: ghostrace must report the overlapping writes it
// saw before the process died and exit with the child's status. Expected
// finding: map_concurrent_write; expected exit status: 2.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

type Session struct {
	User    string
	Created int64
}

type Store struct {
	sessions map[uint64]Session
}

func (s *Store) Login(id uint64, user string, now int64) {
	s.sessions[id] = Session{User: user, Created: now} // ghostrace:expect map_concurrent_write
}

func (s *Store) Logout(id uint64) {
	delete(s.sessions, id) // ghostrace:expect map_concurrent_write
}

func main() {
	// The race needs two threads running Go code; keep two Ps even when the
	// machine (or taskset) offers a single CPU.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	st := &Store{sessions: make(map[uint64]Session)}
	users := []string{"ana", "bo", "chen", "dara", "eli", "fay"}

	fmt.Println("map_concurrent_writes_crash: serving logins and logouts on an unguarded session map")

	// Quiet start: one handler goroutine serves logins alone for 300 ms.
	var next uint64
	for begin := time.Now(); time.Since(begin) < 300*time.Millisecond; {
		for k := 0; k < 50; k++ {
			st.Login(next%4096, users[next%uint64(len(users))], int64(next))
			next++
		}
		time.Sleep(time.Millisecond)
	}

	// Peak traffic: two login handlers and two logout handlers at once.
	var start sync.WaitGroup
	start.Add(1)
	for w := 0; w < 4; w++ {
		go func(w int) {
			start.Wait()
			for i := uint64(0); ; i++ {
				id := i % 4096
				if w%2 == 0 {
					st.Login(id, users[i%uint64(len(users))], int64(i))
				} else {
					st.Logout(id)
				}
			}
		}(w)
	}
	start.Done()
	time.Sleep(2 * time.Second)
	fmt.Println("map_concurrent_writes_crash: survived 2 s of concurrent map writes (the runtime did not catch it)")
	os.Exit(0)
}
