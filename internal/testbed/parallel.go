package testbed

import (
	"flag"
	"strconv"
)

// DefaultParallel sets -test.parallel to n unless the command line gave it,
// for a package whose tests mostly wait (on poll intervals, servers,
// timers) rather than compute: the default, GOMAXPROCS, leaves a 2-core
// machine idle while they queue. Call it from TestMain before m.Run; it
// parses the flags. n < 1 leaves the default.
func DefaultParallel(n int) {
	flag.Parse()
	if n < 1 {
		return
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		return
	}
	if err := flag.Set("test.parallel", strconv.Itoa(n)); err != nil {
		panic(err) // the testing package defines the flag; n is a valid number
	}
}
