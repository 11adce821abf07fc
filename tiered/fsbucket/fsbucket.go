// Package fsbucket implements bucket.Bucket on a local directory, for
// development, single-node deployments and tests.
//
// Key "a/b/c" is the file DIR/a/b/c, so a bucket can be inspected with ls.
// Put writes DIR/a/b/.tmp-RANDOM, fsyncs it, renames it over DIR/a/b/c and
// fsyncs DIR/a/b: readers open either the old file or the new one, and an
// acknowledged Put survives a crash. Valid keys have no segment starting
// with '.', so temporary files never collide with objects, and List skips
// them; a crash can leave one behind, which is harmless.
//
// Delete removes directories it leaves empty, up to DIR itself. A key that
// is also the directory of other keys ("a" beside "a/b") cannot be stored:
// Put fails with ErrConflict (the bucket contract rules such keys out).
//
// Several Buckets, in one process or several, may share a directory.
package fsbucket

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/eddy-streams/eddy/tiered/bucket"
)

// ErrConflict means a key names a directory holding other keys, or has a
// prefix that names an object.
var ErrConflict = errors.New("fsbucket: key conflicts with a directory")

// Bucket is a bucket.Bucket on a directory. It is safe for concurrent use.
type Bucket struct {
	root string
}

var _ bucket.Bucket = (*Bucket)(nil)

// Open returns a Bucket storing objects under dir, creating dir if needed.
func Open(dir string) (*Bucket, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsbucket: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("fsbucket: %w", err)
	}
	return &Bucket{root: root}, nil
}

// Dir returns the bucket's directory as an absolute path.
func (b *Bucket) Dir() string { return b.root }

func (b *Bucket) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// notFound reports whether err means that a path does not name a file: it
// or a parent is missing, a parent is a file, or it is a directory.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}

func check(ctx context.Context, op, key string) error {
	if err := bucket.ValidKey(key); err != nil {
		return fmt.Errorf("fsbucket: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsbucket: %s %q: %w", op, key, err)
	}
	return nil
}

// Put implements bucket.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := check(ctx, "put", key); err != nil {
		return err
	}
	path := b.path(key)
	dir := filepath.Dir(path)
	f, err := createTemp(dir)
	if err != nil {
		return b.putErr(key, err)
	}
	tmp := f.Name()
	err = write(f, data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Last chance to honour cancellation before the object appears.
		err = ctx.Err()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return b.putErr(key, err)
	}
	if err := syncDir(dir); err != nil {
		return b.putErr(key, err)
	}
	return nil
}

// createTemp creates a temporary file in dir, creating dir first. A
// concurrent Delete may remove dir between the two steps, so retry a few
// times.
func createTemp(dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(dir, ".tmp-*")
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return f, err
		}
	}
}

func (b *Bucket) putErr(key string, err error) error {
	// mkdir under a file gives ENOTDIR; rename over a directory gives EISDIR
	// (or EEXIST/ENOTEMPTY on some systems).
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("fsbucket: put %q: %w: %w", key, ErrConflict, err)
	}
	return fmt.Errorf("fsbucket: put %q: %w", key, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements bucket.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, "get", key); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(b.path(key))
	if err != nil {
		return nil, readErr("get", key, err)
	}
	return data, nil
}

func readErr(op, key string, err error) error {
	if notFound(err) {
		return fmt.Errorf("fsbucket: %s %q: %w", op, key, bucket.ErrNotFound)
	}
	return fmt.Errorf("fsbucket: %s %q: %w", op, key, err)
}

// GetRange implements bucket.Bucket.
func (b *Bucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := check(ctx, "get range", key); err != nil {
		return nil, err
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		return nil, readErr("get range", key, err)
	}
	defer f.Close()
	// Objects are replaced by rename, never rewritten, so the open file's
	// size cannot change under us.
	st, err := f.Stat()
	if err != nil {
		return nil, readErr("get range", key, err)
	}
	if st.IsDir() {
		return nil, readErr("get range", key, syscall.EISDIR)
	}
	if off < 0 || n < 0 || off > st.Size() || n > st.Size()-off {
		return nil, fmt.Errorf("fsbucket: get range %q [%d, +%d) of %d bytes: %w", key, off, n, st.Size(), bucket.ErrRange)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("fsbucket: get range %q: %w", key, err)
	}
	return buf, nil
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := check(ctx, "delete", key); err != nil {
		return err
	}
	path := b.path(key)
	// os.Remove would also remove an empty directory, which is not an object.
	if st, err := os.Lstat(path); err != nil || st.IsDir() {
		if err != nil && !notFound(err) {
			return fmt.Errorf("fsbucket: delete %q: %w", key, err)
		}
		return nil
	}
	if err := os.Remove(path); err != nil && !notFound(err) {
		return fmt.Errorf("fsbucket: delete %q: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil && !notFound(err) {
		return fmt.Errorf("fsbucket: delete %q: %w", key, err)
	}
	// Remove directories left empty; Remove fails on a non-empty one, which
	// is how a concurrent Put into it wins.
	for ; dir != b.root; dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List implements bucket.Bucket. It walks only the directories that can
// hold keys starting with prefix, reading each one whole and sorting it.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(bucket.Object) error) error {
	if err := bucket.ValidPrefix(prefix); err != nil {
		return fmt.Errorf("fsbucket: list: %w", err)
	}
	// Start in the deepest directory the prefix names completely.
	start := prefix[:strings.LastIndexByte(prefix, '/')+1]
	return b.walk(ctx, start, prefix, fn)
}

// walk lists directory dirKey ("" or ending in '/').
func (b *Bucket) walk(ctx context.Context, dirKey, prefix string, fn func(bucket.Object) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsbucket: list %q: %w", prefix, err)
	}
	entries, err := os.ReadDir(filepath.Join(b.root, filepath.FromSlash(dirKey)))
	if err != nil {
		if notFound(err) { // never existed, or removed by a Delete meanwhile
			return nil
		}
		return fmt.Errorf("fsbucket: list %q: %w", prefix, err)
	}
	// Key order is not name order: a directory "a" sorts as "a/", after a
	// file "a-c" ('-' < '/').
	type entry struct {
		key string // with a trailing '/' for a directory
		de  fs.DirEntry
	}
	es := make([]entry, 0, len(entries))
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".") {
			continue // temporary file
		}
		key := dirKey + de.Name()
		if de.IsDir() {
			key += "/"
		}
		es = append(es, entry{key, de})
	}
	slices.SortFunc(es, func(x, y entry) int { return strings.Compare(x.key, y.key) })

	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fsbucket: list %q: %w", prefix, err)
		}
		if e.de.IsDir() {
			if strings.HasPrefix(e.key, prefix) || strings.HasPrefix(prefix, e.key) {
				if err := b.walk(ctx, e.key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(e.key, prefix) || !e.de.Type().IsRegular() || bucket.ValidKey(e.key) != nil {
			continue
		}
		info, err := e.de.Info()
		if err != nil {
			if notFound(err) { // deleted since ReadDir
				continue
			}
			return fmt.Errorf("fsbucket: list %q: %w", prefix, err)
		}
		if err := fn(bucket.Object{Key: e.key, Size: info.Size(), Modified: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
