package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// Limits are the machine's own ceilings, measured in the same run.
type Limits struct {
	// LoopbackMBps is one TCP connection on 127.0.0.1 writing RecordSize
	// bytes per write call and reading into a 64 KiB buffer.
	LoopbackMBps map[int]float64 `json:"loopback_mb_per_sec"` // by record size
	// DiskMBps is sequential 1 MiB writes to a new file, each followed by
	// fdatasync, in Dir.
	DiskMBps float64 `json:"disk_fsync_mb_per_sec"`
	DiskDir  string  `json:"disk_dir"`
}

// measureLoopback measures loopback TCP throughput for writes of size
// bytes during d.
func measureLoopback(ctx context.Context, size int, d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 64<<10))
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, size)
	rand.Read(buf)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ctx.Err() == nil; i++ {
		if i%64 == 0 && time.Now().After(deadline) {
			break
		}
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	n := <-got
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return float64(n) / MB / time.Since(start).Seconds(), nil
}

// measureDisk measures sequential 1 MiB writes, each fdatasync'd, to a
// temporary file in dir during d.
func measureDisk(ctx context.Context, dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "eddy-bench-fsync-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	var n int64
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := fdatasync(f); err != nil {
			return 0, err
		}
		n += int64(len(buf))
	}
	if n == 0 {
		return 0, errors.New("bench: disk test wrote nothing")
	}
	return float64(n) / MB / time.Since(start).Seconds(), ctx.Err()
}
