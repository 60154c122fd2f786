package main

import (
	"math"
	"sort"
)

// Stats summarizes repeated measurements.
type Stats struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Summarize returns the minimum, median (the mean of the middle two for an
// even count) and maximum of xs; the zero Stats for none.
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stats{N: n, Min: s[0], Median: med, Max: s[n-1]}
}

// Ratio is a/b, or NaN when b is zero.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// PerUnit is cost/units (for example nanoseconds per leaf), NaN for zero
// units.
func PerUnit(costNs float64, units uint64) float64 {
	if units == 0 {
		return math.NaN()
	}
	return costNs / float64(units)
}

// Fit is the least-squares line y = Intercept + Slope*x and how much of
// y's variance it explains (R², 1 for a perfect line).
type Fit struct {
	Intercept float64 `json:"intercept"`
	Slope     float64 `json:"slope"`
	R2        float64 `json:"r2"`
}

// LinearFit fits y against x; ok is false with fewer than two distinct x.
func LinearFit(x, y []float64) (Fit, bool) {
	if len(x) != len(y) || len(x) < 2 {
		return Fit{}, false
	}
	n := float64(len(x))
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return Fit{}, false
	}
	f := Fit{Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	f.R2 = 1
	if syy != 0 {
		f.R2 = sxy * sxy / (sxx * syy)
	}
	return f, true
}
