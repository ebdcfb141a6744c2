package main

import (
	"slices"
)

// stat is one figure over the runs: the median and the range.
type stat struct {
	med, lo, hi float64
	n           int
}

// over is f of every run that has the figure (ok), as a stat. A ratio is
// taken within each run first, then summarised: the median of the ratios,
// never a ratio of medians.
func over(runs []*results, f func(*results) (float64, bool)) stat {
	var xs []float64
	for _, r := range runs {
		if v, ok := f(r); ok {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return stat{}
	}
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return stat{med: m, lo: xs[0], hi: xs[len(xs)-1], n: len(xs)}
}

// fmt writes the median with format and, over more than one run, the range
// in brackets: "1.2 M (1.1 M–1.3 M)"; a range that reads as one value is
// left out.
func (s stat) fmt(format func(float64) string) string {
	m, lo, hi := format(s.med), format(s.lo), format(s.hi)
	if s.n <= 1 || lo == hi {
		return m
	}
	return m + " (" + lo + "–" + hi + ")"
}
