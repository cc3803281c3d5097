module ghostrace.test/bench

go 1.19
