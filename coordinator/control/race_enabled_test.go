//go:build race

package control

// raceEnabled reports whether the tests run under the race detector, which
// slows code ~10x and unevenly, so timing tests mean nothing there.
const raceEnabled = true
