//go:build race

package broker_test

// raceBuild: the tests run under the race detector, which slows the
// brokers several times over; tests that hold a client to its default
// retry budget widen it then (see its uses).
const raceBuild = true
