//go:build !race

package broker_test

// raceBuild: see race_on_test.go.
const raceBuild = false
