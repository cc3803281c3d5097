module ghostrace.test/scenarios

go 1.19
