//go:build race

package batch_test

// raceBuild: the tests run under the race detector, whose sync.Pool drops
// a quarter of what is put back, so a pooled decoder (and its window) is
// built again now and then: allocation bounds allow for it.
const raceBuild = true
