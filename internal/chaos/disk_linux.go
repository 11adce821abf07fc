package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// A broker's local disk is a tmpfs of diskBytes mounted on its data
// directory, so that the nemesis can fill it for real: every write of the
// broker (WAL, metering spool, read cache) then fails with ENOSPC, as on
// a full volume. Mounting needs root (CAP_SYS_ADMIN); without it the
// brokers use a plain directory and the plan leaves disk-full out.
const diskBytes = 384 << 20

// mountDisk mounts a tmpfs of diskBytes on dir.
func mountDisk(dir string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", diskBytes)); err != nil {
		return fmt.Errorf("chaos: mount a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// unmountDisk undoes mountDisk (lazily, should a process still hold a
// file there).
func unmountDisk(dir string) error {
	return syscall.Unmount(dir, syscall.MNT_DETACH)
}

// fillerName is the file that fills a broker's disk.
const fillerName = "chaos-disk-filler"

// fillDisk takes every free byte of the filesystem holding dir.
func fillDisk(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("chaos: statfs %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	f, err := os.OpenFile(filepath.Join(dir, fillerName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: fill %s: %w", dir, err)
	}
	defer f.Close()
	// A big piece first, then ever smaller ones until nothing fits (a
	// tmpfs fallocate that does not fit allocates nothing): what the
	// broker writes meanwhile only moves where ENOSPC starts.
	var off int64
	for _, n := range []int64{free - 4<<20, 1 << 20, 4 << 10} {
		for n > 0 {
			err := syscall.Fallocate(int(f.Fd()), 0, off, n)
			if err == syscall.ENOSPC {
				break
			}
			if err != nil {
				return fmt.Errorf("chaos: fill %s: %w", dir, err)
			}
			off += n
		}
	}
	return nil
}

// freeDisk removes what fillDisk took.
func freeDisk(dir string) error {
	if err := os.Remove(filepath.Join(dir, fillerName)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("chaos: free %s: %w", dir, err)
	}
	return nil
}
