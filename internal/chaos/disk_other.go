//go:build !linux

package chaos

import "errors"

const diskBytes = 0

var errNoDisk = errors.New("chaos: filling a broker's disk needs Linux")

func mountDisk(string) error   { return errNoDisk }
func unmountDisk(string) error { return errNoDisk }
func fillDisk(string) error    { return errNoDisk }
func freeDisk(string) error    { return errNoDisk }
