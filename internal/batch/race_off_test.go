//go:build !race

package batch_test

// raceBuild: see race_on_test.go.
const raceBuild = false
