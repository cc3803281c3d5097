module ghostrace.test/demo

go 1.19
