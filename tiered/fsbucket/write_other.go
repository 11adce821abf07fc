//go:build !linux

package fsbucket

import "os"

// write writes data to the new file f; the caller fsyncs it.
func write(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}
