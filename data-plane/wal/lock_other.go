//go:build !unix

package wal

import "io"

// lockDir is a no-op where flock is unavailable; brokers run on Linux.
func lockDir(string) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
