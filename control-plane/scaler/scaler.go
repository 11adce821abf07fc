// Package scaler changes the number of broker processes in the pool, for
// the autoscaler: Processes runs `eddy broker` children on this machine
// (eddy dev); Kubernetes sets the replicas of the brokers' StatefulSet or
// Deployment through the API server's scale subresource.
//
// Both number brokers 1..n and remove the highest numbers first when
// shrinking (as a StatefulSet removes its highest ordinals), so the
// caller knows which brokers to drain before it shrinks the pool. Both are
// safe for concurrent use.
package scaler

import "errors"

// ErrRange: a size outside what the scaler allows.
var ErrRange = errors.New("scaler: size out of range")
