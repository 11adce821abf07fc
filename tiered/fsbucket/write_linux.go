package fsbucket

import (
	"os"

	"golang.org/x/sys/unix"
)

// trickleBytes is the piece of a large object whose write-back starts as
// soon as it is written: compaction's objects (64 MiB) written in one
// go and fsynced at the end hold the disk for the whole write-back at
// once, and every other fsync on it (Postgres's WAL, the brokers' WALs
// and their small flush objects) waits behind it. Written piece by piece,
// with at most two pieces dirty (sync_file_range, as RocksDB's
// bytes_per_sync), the final fsync finds little left and others' fsyncs
// slip in between pieces. Objects up to trickleAbove keep one write.
const (
	trickleBytes = 4 << 20
	trickleAbove = 8 << 20
)

// write writes data to the new file f; the caller fsyncs it. The
// sync_file_range calls are advice: a filesystem that refuses them still
// gets the fsync.
func write(f *os.File, data []byte) error {
	if len(data) <= trickleAbove {
		_, err := f.Write(data)
		return err
	}
	fd := int(f.Fd())
	for off := 0; off < len(data); off += trickleBytes {
		end := min(off+trickleBytes, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			return err
		}
		_ = unix.SyncFileRange(fd, int64(off), int64(end-off), unix.SYNC_FILE_RANGE_WRITE)
		if off >= trickleBytes {
			_ = unix.SyncFileRange(fd, int64(off-trickleBytes), trickleBytes,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
	}
	return nil
}
