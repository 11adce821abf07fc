// Package buckettest is the acceptance suite of the bucket contract. Every
// driver runs it against a real instance of its store (a directory, an
// S3-compatible server), so the package documentation of tiered/bucket and
// this suite say the same thing: a behaviour a driver must have is tested
// here, and a behaviour tested here is documented there.
package buckettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eddy-streams/eddy/tiered/bucket"
)

// Run runs the acceptance suite. newBucket must return an empty bucket for
// the test it is given and arrange its cleanup; it is called once per subtest.
func Run(t *testing.T, newBucket func(t *testing.T) bucket.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bucket.Bucket)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"GetRange", testGetRange},
		{"GetRangeEmptyObject", testGetRangeEmptyObject},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStops", testListStops},
		{"ListMany", testListMany},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ContextCanceled", testContextCanceled},
		{"Retries", testRetries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBucket(t)) })
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, b bucket.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, b bucket.Bucket, key string) []byte {
	t.Helper()
	data, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return data
}

func list(t *testing.T, b bucket.Bucket, prefix string) []bucket.Object {
	t.Helper()
	var objs []bucket.Object
	err := b.List(t.Context(), prefix, func(o bucket.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

func keys(objs []bucket.Object) []string {
	ks := make([]string, len(objs))
	for i, o := range objs {
		ks[i] = o.Key
	}
	return ks
}

func testPutGet(t *testing.T, b bucket.Bucket) {
	for _, size := range []int{0, 1, 5 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("obj/%d", size)
			data := randBytes(uint64(size), size)
			want := bytes.Clone(data)
			put(t, b, key, data)
			// Put must not retain data: the caller reuses its buffers.
			for i := range data {
				data[i] ^= 0xff
			}
			got := get(t, b, key)
			if !bytes.Equal(got, want) {
				t.Fatalf("Get returned %d bytes, differing from the %d put", len(got), len(want))
			}
			// The returned slice belongs to the caller.
			for i := range got {
				got[i] ^= 0xff
			}
			if again := get(t, b, key); !bytes.Equal(again, want) {
				t.Fatal("modifying a Get result changed the stored object")
			}
			objs := list(t, b, key)
			if len(objs) != 1 || objs[0].Key != key || objs[0].Size != int64(size) {
				t.Fatalf("List(%q) = %+v, want one object of %d bytes", key, objs, size)
			}
			if objs[0].Modified.IsZero() {
				t.Error("List reported a zero Modified time")
			}
		})
	}
}

func testOverwrite(t *testing.T, b bucket.Bucket) {
	put(t, b, "k", []byte("first version, longer"))
	put(t, b, "k", []byte("second"))
	if got := get(t, b, "k"); string(got) != "second" {
		t.Fatalf("Get after overwrite = %q, want %q", got, "second")
	}
	objs := list(t, b, "")
	if len(objs) != 1 || objs[0].Size != int64(len("second")) {
		t.Fatalf("List after overwrite = %+v, want one object of 6 bytes", objs)
	}
}

// testAtomicOverwrite checks that readers racing an overwrite see one whole
// version or the other, never a mix or a prefix.
func testAtomicOverwrite(t *testing.T, b bucket.Bucket) {
	versions := [][]byte{
		bytes.Repeat([]byte{'a'}, 64<<10),
		bytes.Repeat([]byte{'b'}, 128<<10),
	}
	put(t, b, "k", versions[0])
	ctx := t.Context()
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		for i := range rounds {
			if err := b.Put(ctx, "k", versions[(i+1)%2]); err != nil {
				errs <- fmt.Errorf("Put: %w", err)
				return
			}
		}
	})
	wg.Go(func() {
		for range rounds {
			got, err := b.Get(ctx, "k")
			if err != nil {
				errs <- fmt.Errorf("Get during overwrite: %w", err)
				return
			}
			if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
				errs <- fmt.Errorf("Get during overwrite returned a torn object of %d bytes", len(got))
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testGetRange(t *testing.T, b bucket.Bucket) {
	const size = 1000
	data := randBytes(7, size)
	put(t, b, "r", data)
	for _, tc := range []struct {
		name   string
		off, n int64
		ok     bool
	}{
		{"start", 0, 10, true},
		{"middle", 400, 123, true},
		{"end", size - 10, 10, true},
		{"whole", 0, size, true},
		{"last byte", size - 1, 1, true},
		{"empty at start", 0, 0, true},
		{"empty in middle", 500, 0, true},
		{"empty at end", size, 0, true},
		{"past end", size - 10, 11, false},
		{"whole plus one", 0, size + 1, false},
		{"at end", size, 1, false},
		{"beyond end", size + 100, 1, false},
		{"empty beyond end", size + 1, 0, false},
		{"negative offset", -1, 1, false},
		{"negative length", 10, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.GetRange(t.Context(), "r", tc.off, tc.n)
			if !tc.ok {
				if !errors.Is(err, bucket.ErrRange) {
					t.Fatalf("GetRange(%d, %d) = %d bytes, %v; want an error wrapping ErrRange", tc.off, tc.n, len(got), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tc.off, tc.n, err)
			}
			if want := data[tc.off : tc.off+tc.n]; !bytes.Equal(got, want) {
				t.Fatalf("GetRange(%d, %d) returned %d bytes, differing from the %d expected", tc.off, tc.n, len(got), len(want))
			}
		})
	}
}

func testGetRangeEmptyObject(t *testing.T, b bucket.Bucket) {
	put(t, b, "empty", nil)
	got, err := b.GetRange(t.Context(), "empty", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(0, 0) on an empty object = %q, %v; want no bytes, no error", got, err)
	}
	if _, err := b.GetRange(t.Context(), "empty", 0, 1); !errors.Is(err, bucket.ErrRange) {
		t.Fatalf("GetRange(0, 1) on an empty object: %v, want ErrRange", err)
	}
}

func testNotFound(t *testing.T, b bucket.Bucket) {
	ctx := t.Context()
	put(t, b, "dir/child", []byte("x"))
	// "dir" is a prefix of an object, not an object.
	for _, key := range []string{"missing", "dir/missing", "dir", "missing/deeper/key"} {
		if data, err := b.Get(ctx, key); !bucket.IsNotFound(err) {
			t.Errorf("Get(%q) = %d bytes, %v; want ErrNotFound", key, len(data), err)
		}
		if data, err := b.GetRange(ctx, key, 0, 1); !bucket.IsNotFound(err) {
			t.Errorf("GetRange(%q, 0, 1) = %d bytes, %v; want ErrNotFound", key, len(data), err)
		}
		if data, err := b.GetRange(ctx, key, 0, 0); !bucket.IsNotFound(err) {
			t.Errorf("GetRange(%q, 0, 0) = %d bytes, %v; want ErrNotFound", key, len(data), err)
		}
	}
}

func testDelete(t *testing.T, b bucket.Bucket) {
	ctx := t.Context()
	if err := b.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	put(t, b, "a/b/c", []byte("data"))
	put(t, b, "a/x", []byte("other"))
	if err := b.Delete(ctx, "a/b/c"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Get(ctx, "a/b/c"); !bucket.IsNotFound(err) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "a/b/c"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := keys(list(t, b, "")); !slices.Equal(got, []string{"a/x"}) {
		t.Fatalf("List after Delete = %q, want [a/x]", got)
	}
	// The deleted key's "directory" must still be usable.
	put(t, b, "a/b/d", []byte("new"))
	if got := get(t, b, "a/b/d"); string(got) != "new" {
		t.Fatalf("Get after re-put = %q", got)
	}
}

func testList(t *testing.T, b bucket.Bucket) {
	// Lexical order is byte order of whole keys: '-' (0x2d) sorts before
	// '/' (0x2f), so "a-c" precedes everything under "a/", which a naive
	// directory walk would get wrong.
	all := []string{"a-c", "a.b", "a0", "a/1", "a/2", "a/b/1", "a/b/2/x", "ab/x", "b", "z/y/x"}
	for i, k := range all {
		put(t, b, k, bytes.Repeat([]byte{'x'}, i))
	}
	want := slices.Clone(all)
	slices.Sort(want)

	objs := list(t, b, "")
	if got := keys(objs); !slices.Equal(got, want) {
		t.Fatalf("List(\"\") = %q\nwant %q", got, want)
	}
	for _, o := range objs {
		if i := slices.Index(all, o.Key); o.Size != int64(i) {
			t.Errorf("List reported %q with size %d, want %d", o.Key, o.Size, i)
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/2", "a/b/1", "a/b/2/x"}},
		{"a", []string{"a-c", "a.b", "a/1", "a/2", "a/b/1", "a/b/2/x", "a0", "ab/x"}},
		{"a/b", []string{"a/b/1", "a/b/2/x"}},
		{"a/b/", []string{"a/b/1", "a/b/2/x"}},
		{"a/b/2", []string{"a/b/2/x"}},
		{"a/1", []string{"a/1"}},
		{"z/", []string{"z/y/x"}},
		{"z/y/x", []string{"z/y/x"}},
		{"z/y/x/", nil},
		{"nope", nil},
		{"nope/", nil},
		{"b/", nil},
	} {
		if got := keys(list(t, b, tc.prefix)); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testListStops(t *testing.T, b bucket.Bucket) {
	for _, k := range []string{"p/1", "p/2", "p/3"} {
		put(t, b, k, []byte(k))
	}
	stop := errors.New("stop here")
	var seen []string
	err := b.List(t.Context(), "p/", func(o bucket.Object) error {
		seen = append(seen, o.Key)
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want fn's error", err)
	}
	if !slices.Equal(seen, []string{"p/1"}) {
		t.Fatalf("List called fn for %q after it failed", seen)
	}
}

// testListMany crosses S3's 1000-key page boundary.
func testListMany(t *testing.T, b bucket.Bucket) {
	if testing.Short() {
		t.Skip("writes 1100 objects")
	}
	const n = 1100
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("many/%x/%d", i%16, i))
	}
	putAll(t, b, want, 8)
	slices.Sort(want)
	if got := keys(list(t, b, "many/")); !slices.Equal(got, want) {
		t.Fatalf("List returned %d keys, want %d in order", len(got), len(want))
	}
}

// putAll puts each key with its name as content, using workers goroutines.
func putAll(t *testing.T, b bucket.Bucket, keys []string, workers int) {
	t.Helper()
	ctx := t.Context()
	work := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range work {
				if err := b.Put(ctx, k, []byte(k)); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", k, err)
					return
				}
			}
		})
	}
	go func() {
		defer close(work)
		for _, k := range keys {
			select {
			case work <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testInvalidKeys(t *testing.T, b bucket.Bucket) {
	ctx := t.Context()
	for _, key := range []string{
		"",
		"/abs",
		"trailing/",
		"a//b",
		"..",
		"a/../b",
		"a..b",
		".",
		"./a",
		"a/./b",
		".hidden",
		"a/.hidden",
		"nul\x00byte",
		"new\nline",
		"bad\xffutf8",
		longKey(bucket.MaxKeyLen + 1),
		strings.Repeat("s", bucket.MaxSegmentLen+1),
	} {
		if err := b.Put(ctx, key, []byte("x")); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Get(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.GetRange(ctx, key, 0, 1); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("GetRange(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "../", "a//", "a/../", ".x", "nul\x00"} {
		err := b.List(ctx, prefix, func(bucket.Object) error { return nil })
		if !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("List(%q): %v, want ErrInvalidKey", prefix, err)
		}
	}
	// Nothing may have been written by the rejected calls.
	if got := keys(list(t, b, "")); len(got) != 0 {
		t.Errorf("invalid Puts left objects %q", got)
	}
	// The longest valid key works, and so does the longest segment.
	long := longKey(bucket.MaxKeyLen)
	put(t, b, long, []byte("x"))
	put(t, b, strings.Repeat("s", bucket.MaxSegmentLen), []byte("x"))
	if got := get(t, b, long); string(got) != "x" {
		t.Errorf("Get of a %d-byte key = %q", len(long), got)
	}
}

// longKey returns a key of n bytes made of long segments.
func longKey(n int) string {
	seg := strings.Repeat("k", bucket.MaxSegmentLen-1)
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte('/')
		}
		sb.WriteString(seg[:min(len(seg), n-sb.Len())])
	}
	return sb.String()
}

func testConcurrentPuts(t *testing.T, b bucket.Bucket) {
	var ks []string
	for i := range 64 {
		ks = append(ks, fmt.Sprintf("c/%02d/obj", i))
	}
	putAll(t, b, ks, 16)
	for _, k := range ks {
		if got := get(t, b, k); string(got) != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
	}
	if got := keys(list(t, b, "c/")); !slices.Equal(got, ks) {
		t.Errorf("List = %q, want %q", got, ks)
	}
}

func testContextCanceled(t *testing.T, b bucket.Bucket) {
	put(t, b, "exists", []byte("data"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", op, err)
		}
	}
	check("Put", b.Put(ctx, "new", []byte("x")))
	_, err := b.Get(ctx, "exists")
	check("Get", err)
	_, err = b.GetRange(ctx, "exists", 0, 1)
	check("GetRange", err)
	check("Delete", b.Delete(ctx, "exists"))
	called := false
	check("List", b.List(ctx, "", func(bucket.Object) error { called = true; return nil }))
	if called {
		t.Error("List called fn despite a cancelled context")
	}
	// The cancelled calls had no effect.
	if _, err := b.Get(t.Context(), "new"); !bucket.IsNotFound(err) {
		t.Errorf("Get of a key whose Put was cancelled: %v, want ErrNotFound", err)
	}
	if got := get(t, b, "exists"); string(got) != "data" {
		t.Errorf("object changed by a cancelled Delete: %q", got)
	}
}

// testRetries checks that repeating a call, as a retry after a lost reply
// does, is harmless.
func testRetries(t *testing.T, b bucket.Bucket) {
	ctx := t.Context()
	data := randBytes(3, 4096)
	put(t, b, "retry/obj", data)
	put(t, b, "retry/obj", data)
	if got := get(t, b, "retry/obj"); !bytes.Equal(got, data) {
		t.Fatal("Get after a repeated Put returned different bytes")
	}
	if got := keys(list(t, b, "retry/")); !slices.Equal(got, []string{"retry/obj"}) {
		t.Fatalf("List after a repeated Put = %q", got)
	}
	for range 2 {
		if err := b.Delete(ctx, "retry/obj"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
}
