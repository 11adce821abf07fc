//go:build race

package racebuild

// Enabled: built with the race detector.
const Enabled = true
