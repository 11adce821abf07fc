package fsbucket_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/buckettest"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
)

func open(t *testing.T) *fsbucket.Bucket {
	t.Helper()
	b, err := fsbucket.Open(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAcceptance(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket { return open(t) })
}

func TestLayout(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	if err := b.Put(ctx, "t/acme/obj", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(b.Dir(), "t", "acme", "obj"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("file for key t/acme/obj = %q, %v", got, err)
	}
	// Leftovers of a crashed Put are invisible.
	if err := os.WriteFile(filepath.Join(b.Dir(), "t", "acme", ".tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(o bucket.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"t/acme/obj"}) {
		t.Fatalf("List = %q", keys)
	}
	// Deleting the last object removes the directories it leaves empty, but
	// not the bucket's own.
	if err := os.Remove(filepath.Join(b.Dir(), "t", "acme", ".tmp-123")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "t/acme/obj"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(b.Dir())
	if err != nil || len(ents) != 0 {
		t.Fatalf("bucket directory after deleting everything: %v, %v", ents, err)
	}
}

func TestConflict(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	if err := b.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a", []byte("x")); !errors.Is(err, fsbucket.ErrConflict) {
		t.Errorf("Put over a directory: %v, want ErrConflict", err)
	}
	if err := b.Put(ctx, "a/b/c", []byte("x")); !errors.Is(err, fsbucket.ErrConflict) {
		t.Errorf("Put under an object: %v, want ErrConflict", err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Errorf("Delete of a directory: %v", err)
	}
	if got, err := b.Get(ctx, "a/b"); err != nil || string(got) != "x" {
		t.Errorf("Get(a/b) = %q, %v", got, err)
	}
}

// An object larger than the piece the write-back trickles in comes back
// whole, whatever its size modulo the piece.
func TestLargePut(t *testing.T) {
	b := open(t)
	for _, n := range []int{8<<20 + 1, 13<<20 + 7, 16 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7 / 3)
		}
		if err := b.Put(t.Context(), "large/object", data); err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(t.Context(), "large/object")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, data) {
			t.Fatalf("%d bytes put, %d read back differ", n, len(got))
		}
	}
}
