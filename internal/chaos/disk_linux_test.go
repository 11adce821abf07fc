package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// fillDisk leaves no room for a write, freeDisk gives it back.
func TestFillDisk(t *testing.T) {
	dir := t.TempDir()
	if err := mountDisk(dir); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	defer unmountDisk(dir)
	f, err := os.Create(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := fillDisk(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 64<<10)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write to a full disk: %v, want ENOSPC", err)
	}
	if err := freeDisk(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatalf("a write once freed: %v", err)
	}
}
