//go:build !race

// Package racebuild says whether the binary was built with the race
// detector, which slows code several times over and makes sync.Pool drop
// a quarter of what is put back: tests whose bounds (retries,
// allocations) assume a normal build widen them when it is on.
package racebuild

// Enabled: built with the race detector.
const Enabled = false
