// Package bucket is the contract between Eddy and the object store that holds
// all of its data.
//
// Brokers are stateless: every byte they acknowledge ends up in an object
// written through a Bucket, and every read that misses the local cache is a
// Get or GetRange on one. Two drivers implement the contract, fsbucket (a
// local directory, for development and tests) and s3bucket (any
// S3-compatible service); both pass the acceptance suite in
// tiered/buckettest, which is the executable form of this documentation.
//
// # Keys
//
// Keys are '/'-separated paths such as "t/acme/obj/000042.eddy". A valid key
//
//   - is non-empty, valid UTF-8 and at most MaxKeyLen bytes long, with no
//     segment longer than MaxSegmentLen bytes (a filesystem's name limit);
//   - neither starts nor ends with '/' and never contains "//";
//   - never contains ".." and has no segment that starts with '.', so there
//     are no "." or ".." segments and drivers may keep private files (such
//     as fsbucket's temporary files) in the dot namespace;
//   - contains no NUL or other control character (S3 cannot list those
//     without escaping).
//
// A key must not also be the directory of another key: "a" and "a/b" cannot
// both exist. S3 would allow it but a filesystem cannot, and Eddy's key
// layouts never need it. Drivers reject invalid keys with an error wrapping
// ErrInvalidKey before doing any I/O.
//
// # Semantics
//
//   - Put is atomic: a concurrent or later reader sees the whole new object,
//     the whole previous one, or (if there was none) ErrNotFound, never a
//     prefix. Overwriting is allowed, so retrying a Put is always safe.
//   - Get and GetRange fail with an error wrapping ErrNotFound for a missing
//     object (test with IsNotFound). GetRange returns exactly n bytes or an
//     error: a range reaching past the end of the object fails with ErrRange
//     rather than returning a short read. n == 0 is a valid, empty range.
//   - Delete is idempotent: deleting a missing key succeeds.
//   - List calls fn for every object whose key starts with prefix, in
//     lexical (byte-wise) key order, and stops at the first error fn
//     returns, which List returns unchanged. Objects whose keys are not
//     valid (foreign objects, console "folder" markers, driver temporary
//     files) are not reported. A listing that runs concurrently with writes
//     may or may not include them.
//   - Put does not retain data after it returns; the slices returned by Get
//     and GetRange belong to the caller.
//   - Every method honours ctx: a cancelled context fails the call with an
//     error wrapping ctx.Err().
//
// All methods of every Bucket are safe for concurrent use.
package bucket

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Bucket is a flat namespace of immutable-once-written objects. See the
// package documentation for the exact contract.
type Bucket interface {
	// Put stores data under key, atomically replacing any previous object.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns exactly n bytes starting at off, or an error wrapping
	// ErrRange if off < 0, n < 0 or off+n exceeds the object's size.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each object whose key starts with prefix, in lexical
	// key order. prefix is "" or a valid key, optionally followed by '/'.
	List(ctx context.Context, prefix string, fn func(Object) error) error
}

// Object describes one stored object, as reported by List.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Errors returned (wrapped) by every driver.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("bucket: object not found")
	// ErrRange means a GetRange reached outside the object.
	ErrRange = errors.New("bucket: range not satisfiable")
	// ErrInvalidKey means a key or list prefix breaks the key rules.
	ErrInvalidKey = errors.New("bucket: invalid key")
)

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Length limits of valid keys, in bytes: S3's limit for a whole key and the
// usual filesystem limit for one name.
const (
	MaxKeyLen     = 1024
	MaxSegmentLen = 255
)

// ValidKey returns nil if key obeys the key rules in the package
// documentation, else an error wrapping ErrInvalidKey.
func ValidKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, reason)
	}
	return nil
}

// ValidPrefix returns nil if prefix can be passed to List: it is empty, or a
// valid key optionally followed by one '/'.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if reason := keyProblem(strings.TrimSuffix(prefix, "/")); reason != "" {
		return fmt.Errorf("%w: list prefix %q: %s", ErrInvalidKey, prefix, reason)
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	case key[0] == '/':
		return "starts with '/'"
	case key[len(key)-1] == '/':
		return "ends with '/'"
	case strings.Contains(key, "//"):
		return `contains "//"`
	case strings.Contains(key, ".."):
		return `contains ".."`
	}
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > MaxSegmentLen {
			return fmt.Sprintf("has a segment longer than %d bytes", MaxSegmentLen)
		}
	}
	for i, r := range key {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "contains a control character"
		}
		if r == '.' && (i == 0 || key[i-1] == '/') {
			return "has a segment starting with '.'"
		}
	}
	return ""
}
