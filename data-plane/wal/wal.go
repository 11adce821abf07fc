// Package wal is the broker-wide write-ahead log that holds produced record
// batches from the moment a broker answers acks=1 until the flusher has
// written them to object storage and committed them in Postgres.
//
// The log is a directory of segment files named %020d.wal after their
// [Segment] id. Entries are appended to the current segment; [WAL.Rotate]
// starts a new one and returns its id s, so that every entry appended before
// the call lives in a segment below s. Once the flusher has committed those
// entries it calls [WAL.RemoveBefore](s). After a crash, [Open] followed by
// [WAL.Replay] hands back every entry still on disk so the broker can
// re-commit it; the consumer must tolerate entries that were committed
// already (a crash can come between the Postgres commit and RemoveBefore).
//
// # Format
//
// A segment is a sequence of frames with no segment header and no padding.
// Integers are big-endian; the checksum is CRC-32C (Castagnoli) over the
// payload:
//
//	0        4        8             16       20           28
//	+--------+--------+-------------+--------+------------+----------------+
//	| length | crc    | partitionID | leader | baseOffset | data           |
//	| uint32 | uint32 | int64       | epoch  | int64      | (record batch) |
//	|        |        |             | int32  |            |                |
//	+--------+--------+-------------+--------+------------+----------------+
//	                  |<------------- payload: length bytes -------------->|
//
// length is at least 20 (an empty batch) and at most 256 MiB; anything else
// is a bad frame.
//
// # Crashes
//
// Append issues one write(2) per entry, so a process crash leaves either the
// whole entry or a torn tail in the current segment. Open cuts the newest
// non-empty segment at its first bad frame: those bytes were never fully
// appended. A bad frame in any older segment cannot be a torn write, and
// Replay reports it as [ErrCorrupt] (Open reads only the newest segment, to
// keep restarts quick). Open never appends to a segment that holds data; it
// starts a new one, so the segments Replay reads stay immutable.
//
// Surviving an operating-system crash or power loss is up to the
// [SyncPolicy]: with [SyncNever] the last seconds of appends may be lost and,
// because the kernel writes pages back in no particular order, the damage can
// land in a segment that is no longer the newest, which Replay then cannot
// tell from disk corruption.
//
// # Concurrency
//
// Append, Rotate, RemoveBefore, Size, Sync and Close are safe for concurrent
// use. Append order is the order in which concurrent Appends take the log's
// lock; each Append's entry is in the log when it returns. Replay only reads
// segments that were complete when Open returned, so it can run alongside
// the others, but it is meant to run once, before the first Append.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

var (
	// ErrCorrupt is wrapped by errors that report a bad frame where a torn
	// write cannot explain it; the message names the segment and offset.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrClosed is returned by calls on a closed WAL.
	ErrClosed = errors.New("wal: closed")
	// ErrTooLarge is returned by Append for data longer than [MaxDataSize].
	ErrTooLarge = errors.New("wal: entry too large")
	// ErrLocked is returned by Open when another WAL, in this process or
	// another one, has the directory open.
	ErrLocked = errors.New("wal: directory in use")
)

const (
	// MaxDataSize is the largest Entry.Data that Append accepts.
	MaxDataSize = maxPayload - fieldsSize

	// DefaultSegmentBytes is the segment size used when Options.SegmentBytes
	// is zero.
	DefaultSegmentBytes = 64 << 20
)

const (
	headerSize = 8  // length + crc
	fieldsSize = 20 // partitionID + leaderEpoch + baseOffset
	maxPayload = 256 << 20

	// Frame buffers above this size are not pooled: a rare huge batch should
	// not pin its memory for the life of the process.
	maxPooledFrame = 2 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one record batch as accepted by a partition leader.
type Entry struct {
	PartitionID int64  // Postgres partition id
	LeaderEpoch int32  // leader epoch the batch was accepted under
	BaseOffset  int64  // offset of the batch's first record
	Data        []byte // raw record batch bytes, offsets already patched
}

// Segment identifies a segment file. Ids grow by one with every new segment;
// the first segment of a fresh directory is 1.
type Segment uint64

func (s Segment) fileName() string { return fmt.Sprintf("%020d.wal", uint64(s)) }

// Options configure a WAL. The zero value is valid and means the same as
// DefaultOptions: 64 MiB segments and [SyncNever].
type Options struct {
	// SegmentBytes is the size past which Append starts a new segment. A
	// frame never spans segments, so a segment can exceed it by one entry.
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// Sync says when appended entries are fsynced. It matters only for an
	// operating-system crash or power loss before the flusher commits them;
	// a process crash loses nothing Append returned for, whatever the
	// policy.
	Sync SyncPolicy
}

// DefaultOptions are the options the flags start from.
func DefaultOptions() Options {
	return Options{SegmentBytes: DefaultSegmentBytes, Sync: SyncNever}
}

// RegisterFlags registers --wal-segment-bytes and --wal-sync on fs, with
// the defaults of DefaultOptions.
func (o *Options) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultOptions()
	fs.Int64Var(&o.SegmentBytes, "wal-segment-bytes", d.SegmentBytes,
		"size past which the write-ahead log starts a new segment")
	o.Sync = d.Sync
	fs.Var(&o.Sync, "wal-sync",
		"when the write-ahead log is fsynced: never (page cache, as Kafka), always (before an append returns), or an interval like 100ms")
}

// Validate reports options that Open would reject.
func (o *Options) Validate() error {
	if o.SegmentBytes < 0 {
		return fmt.Errorf("wal: --wal-segment-bytes must not be negative, got %d", o.SegmentBytes)
	}
	if o.Sync < SyncAlways {
		return fmt.Errorf("wal: --wal-sync: invalid policy %d", int64(o.Sync))
	}
	return nil
}

// SyncPolicy says when the WAL fsyncs. It is a flag.Value (and a
// pflag.Value) that parses "never", "always" or a positive duration.
type SyncPolicy int64

const (
	// SyncNever leaves write-back to the kernel, as Kafka does by default
	// (log.flush.interval.messages unset). Close still fsyncs.
	SyncNever SyncPolicy = 0
	// SyncAlways fsyncs before Append returns. Concurrent Appends share
	// fsyncs: one call covers every entry written before it started.
	SyncAlways SyncPolicy = -1
)

// SyncEvery fsyncs from a background goroutine every d; an entry reaches the
// disk at most about d after Append returns. A d of zero or less means
// [SyncAlways].
func SyncEvery(d time.Duration) SyncPolicy {
	if d <= 0 {
		return SyncAlways
	}
	return SyncPolicy(d)
}

func (p SyncPolicy) String() string {
	switch {
	case p == SyncNever:
		return "never"
	case p == SyncAlways:
		return "always"
	case p > 0:
		return time.Duration(p).String()
	}
	return "invalid(" + strconv.FormatInt(int64(p), 10) + ")"
}

// Type implements pflag.Value.
func (SyncPolicy) Type() string { return "policy" }

// Set implements flag.Value.
func (p *SyncPolicy) Set(s string) error {
	switch s {
	case "never":
		*p = SyncNever
	case "always":
		*p = SyncAlways
	default:
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("wal: sync policy %q: want never, always or a positive duration", s)
		}
		*p = SyncPolicy(d)
	}
	return nil
}

// WAL is an open write-ahead log directory.
type WAL struct {
	dir   string
	opts  Options
	lock  io.Closer // held for the life of the WAL
	first Segment   // segment Open started; Replay reads only older ones
	pool  sync.Pool // *[]byte frame buffers

	// syncMu serializes fsyncs, rotations and Close, so no file is closed
	// under an fsync in flight. It is taken before mu, never after.
	syncMu sync.Mutex
	synced int64 // w.written known to be on disk; guarded by syncMu

	mu      sync.Mutex
	f       *os.File // current segment; nil once closed
	seg     Segment  // id of f
	size    int64    // bytes in f
	written int64    // bytes appended by this WAL, over all segments
	closed  bool
	err     error // sticky: after a failed fsync the page cache can't be trusted

	stop chan struct{} // closed by Close to stop syncLoop; nil without it
	done chan struct{} // closed by syncLoop when it returns
}

// Open opens the log in dir, creating dir if needed. It cuts a torn tail off
// the newest segment holding data, reuses a trailing empty segment or creates
// a new one for appends, and, with a [SyncEvery] policy, starts the goroutine
// that Close stops. Only one WAL may have dir open at a time.
func Open(dir string, opts Options) (*WAL, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	w := &WAL{dir: dir, opts: opts, lock: lock}
	if err := w.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	if opts.Sync > 0 {
		w.stop = make(chan struct{})
		w.done = make(chan struct{})
		go w.syncLoop(time.Duration(opts.Sync))
	}
	return w, nil
}

// recover prepares the segment files for appending and opens w.f.
func (w *WAL) recover() error {
	segs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	// Rotations that saw no append before a crash leave empty segments at the
	// end. Cutting a torn tail can empty a segment too, making the one before
	// it the tail: a power loss may have hit both.
	var empty []Segment
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		end, err := w.cutTornTail(last)
		if err != nil {
			return err
		}
		if end > 0 {
			break
		}
		empty = append(empty, last)
		segs = segs[:len(segs)-1]
	}
	// Keep the newest empty segment for appends and drop the others.
	mode := os.O_WRONLY | os.O_APPEND
	if len(empty) > 0 {
		w.seg = empty[0]
		for _, s := range empty[1:] {
			if err := os.Remove(filepath.Join(w.dir, s.fileName())); err != nil {
				return fmt.Errorf("wal: %w", err)
			}
		}
	} else {
		w.seg = 1
		if len(segs) > 0 {
			w.seg = segs[len(segs)-1] + 1
		}
		mode |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(filepath.Join(w.dir, w.seg.fileName()), mode, 0o644)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	// Make the directory entries of a new segment and of removed ones
	// durable, so the files Replay will see are the ones we saw.
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.first = f, w.seg
	return nil
}

// cutTornTail truncates segment s at its first bad frame and returns the
// length of what is left.
func (w *WAL) cutTornTail(s Segment) (int64, error) {
	path := filepath.Join(w.dir, s.fileName())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	r, err := newFrameReader(f)
	if err != nil {
		return 0, err
	}
	var scratch []byte
	for {
		scratch, err = r.next(scratch[:0])
		if err == nil {
			continue
		}
		if err == io.EOF {
			return r.off, nil
		}
		if _, ok := err.(*badFrame); !ok {
			return 0, fmt.Errorf("wal: read segment %d: %w", s, err)
		}
		break
	}
	if err := f.Truncate(r.off); err != nil {
		return 0, fmt.Errorf("wal: cut torn tail of segment %d: %w", s, err)
	}
	// Once a newer segment exists, this one is no longer the tail: a cut
	// that got lost in a power loss would read as corruption next time.
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("wal: cut torn tail of segment %d: %w", s, err)
	}
	return r.off, nil
}

// Replay calls fn with every entry of every segment that held data when Open
// returned and has not been removed since, in append order. Each Entry.Data
// is a fresh slice that fn may keep. Entries appended through w are not
// visited, so call Replay once, before the first Append.
//
// Replay stops at the first error from fn and returns it unwrapped; a bad
// frame makes it return an error wrapping [ErrCorrupt] after fn has seen
// every entry before it.
func (w *WAL) Replay(fn func(Entry) error) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	segs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s >= w.first {
			break
		}
		if err := replaySegment(w.dir, s, fn); err != nil {
			return err
		}
	}
	return nil
}

func replaySegment(dir string, s Segment, fn func(Entry) error) error {
	f, err := os.Open(filepath.Join(dir, s.fileName()))
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed by RemoveBefore: committed already
	}
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	r, err := newFrameReader(f)
	if err != nil {
		return err
	}
	for {
		// A nil buffer makes next allocate, so fn owns every payload.
		p, err := r.next(nil)
		if err == io.EOF {
			return nil
		}
		if bad, ok := err.(*badFrame); ok {
			return fmt.Errorf("%w: segment %d offset %d: %s", ErrCorrupt, s, bad.off, bad.why)
		}
		if err != nil {
			return fmt.Errorf("wal: read segment %d: %w", s, err)
		}
		if err := fn(decodePayload(p)); err != nil {
			return err
		}
	}
}

// Append writes e to the current segment with a single write(2) and, under
// [SyncAlways], fsyncs it. When Append returns nil the entry survives a
// process crash. Data is not retained.
func (w *WAL) Append(e Entry) error {
	if len(e.Data) > MaxDataSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(e.Data))
	}
	bp := w.frameBuffer(headerSize + fieldsSize + len(e.Data))
	*bp = appendFrame((*bp)[:0], e)

	w.mu.Lock()
	end, err := w.writeLocked(*bp)
	full := w.size > w.opts.SegmentBytes
	w.mu.Unlock()
	if cap(*bp) <= maxPooledFrame {
		w.pool.Put(bp)
	}
	if err != nil {
		return err
	}
	if full {
		// A failure to start a segment leaves appends going to this one and
		// the next Append retries; a failed fsync is sticky and surfaces
		// below or in the next call.
		_, _ = w.rotate(w.opts.SegmentBytes)
	}
	if w.opts.Sync == SyncAlways {
		return w.syncTo(end)
	}
	return nil
}

func (w *WAL) frameBuffer(n int) *[]byte {
	if bp, ok := w.pool.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, 0, n)
	return &b
}

// writeLocked writes one frame and returns w.written after it. w.mu must be
// held.
func (w *WAL) writeLocked(frame []byte) (int64, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if _, err := w.f.Write(frame); err != nil {
		// Part of the frame may have reached the file. Frames written after
		// it would be unreachable behind a bad frame, so cut it off or, if
		// that fails too, refuse all further appends.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("wal: segment %d unusable after failed write: %w", w.seg, errors.Join(err, terr))
			return 0, w.err
		}
		return 0, fmt.Errorf("wal: append to segment %d: %w", w.seg, err)
	}
	w.size += int64(len(frame))
	w.written += int64(len(frame))
	return w.written, nil
}

// Rotate closes the current segment and starts a new one, returning its id:
// every entry appended before Rotate was called lives in a segment with a
// smaller id. If the current segment is empty, Rotate returns its id and
// creates nothing. Unless the policy is [SyncNever], the old segment is
// fsynced before Rotate returns; appends proceed into the new segment
// meanwhile.
func (w *WAL) Rotate() (Segment, error) { return w.rotate(0) }

// rotate starts a new segment if the current one holds more than limit bytes
// and returns the id of the segment that appends now go to.
func (w *WAL) rotate(limit int64) (Segment, error) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()

	w.mu.Lock()
	cur, size, closed, err := w.seg, w.size, w.closed, w.err
	w.mu.Unlock()
	switch {
	case closed:
		return 0, ErrClosed
	case err != nil:
		return 0, err
	case size <= limit:
		// Nothing to rotate, or a concurrent Append rotated first.
		return cur, nil
	}
	// Only rotate changes w.seg and we hold syncMu, so cur+1 is still free;
	// creating it without mu keeps appends flowing.
	next := cur + 1
	f, err := os.OpenFile(filepath.Join(w.dir, next.fileName()), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("wal: start segment %d: %w", next, err)
	}

	w.mu.Lock()
	old, end := w.f, w.written
	w.f, w.seg, w.size = f, next, 0
	w.mu.Unlock()

	if w.opts.Sync != SyncNever {
		// The fsync goroutine and syncTo only ever sync the current segment,
		// so the old one must be durable before it is forgotten.
		if err := old.Sync(); err != nil {
			old.Close()
			return 0, w.fail(fmt.Errorf("wal: sync segment %d: %w", cur, err))
		}
		w.synced = max(w.synced, end)
		if err := syncDir(w.dir); err != nil {
			old.Close()
			return 0, w.fail(err)
		}
	}
	if err := old.Close(); err != nil {
		return 0, fmt.Errorf("wal: close segment %d: %w", cur, err)
	}
	return next, nil
}

// RemoveBefore deletes the segments with ids below s; their entries must be
// committed. s must not exceed the current segment, the one Rotate returns.
// A removal that a power loss undoes brings back committed entries for
// Replay, never loses any.
func (w *WAL) RemoveBefore(s Segment) error {
	w.mu.Lock()
	cur, closed := w.seg, w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if s > cur {
		return fmt.Errorf("wal: remove before segment %d: current segment is %d", s, cur)
	}
	// Listing the directory rather than remembering segments makes a failed
	// removal retried by the next call.
	segs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, old := range segs {
		if old >= s {
			break
		}
		if err := os.Remove(filepath.Join(w.dir, old.fileName())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// Size returns the number of bytes in the current segment.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Sync fsyncs every entry appended so far. A failed fsync is sticky: the
// kernel may have dropped the dirty pages, so every later call returns the
// error and the broker must reopen the log to find out what it holds.
func (w *WAL) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return w.syncLocked()
}

// syncTo makes sure the first pos bytes appended are on disk. Appenders that
// queue on syncMu behind an fsync usually find their bytes covered by it.
func (w *WAL) syncTo(pos int64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= pos {
		return nil
	}
	return w.syncLocked()
}

// syncLocked fsyncs the current segment. w.syncMu must be held, which keeps
// Rotate and Close from closing the file underneath.
func (w *WAL) syncLocked() error {
	w.mu.Lock()
	f, pos, err := w.f, w.written, w.err
	w.mu.Unlock()
	switch {
	case err != nil:
		return err
	case w.synced >= pos:
		return nil
	case f == nil:
		return ErrClosed
	}
	if err := f.Sync(); err != nil {
		return w.fail(fmt.Errorf("wal: sync: %w", err))
	}
	w.synced = pos
	return nil
}

// fail records err as the sticky error unless one is set, and returns it.
func (w *WAL) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *WAL) syncLoop(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			// A failure is sticky; the next Append reports it.
			_ = w.Sync()
		}
	}
}

// Close stops accepting appends, stops the sync goroutine and waits for it,
// fsyncs the current segment whatever the policy (a clean shutdown should
// lose nothing) and releases the directory. Later calls return [ErrClosed].
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()

	// syncLoop takes syncMu through Sync, so wait for it before taking it.
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}

	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	err := w.syncLocked()
	w.mu.Lock()
	f := w.f
	w.f = nil
	w.mu.Unlock()
	return errors.Join(err, f.Close(), w.lock.Close())
}

// appendFrame appends e's frame to dst.
func appendFrame(dst []byte, e Entry) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(fieldsSize+len(e.Data)))
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, filled in below
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.PartitionID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.LeaderEpoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.BaseOffset))
	dst = append(dst, e.Data...)
	payload := dst[start+headerSize:]
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// decodePayload returns the entry in a checked payload; Data aliases p.
func decodePayload(p []byte) Entry {
	return Entry{
		PartitionID: int64(binary.BigEndian.Uint64(p[0:])),
		LeaderEpoch: int32(binary.BigEndian.Uint32(p[8:])),
		BaseOffset:  int64(binary.BigEndian.Uint64(p[12:])),
		Data:        p[fieldsSize:],
	}
}

// badFrame describes a frame that is cut short or fails its checks. Whether
// that is a torn write or corruption depends on where it is.
type badFrame struct {
	off int64
	why string
}

func (e *badFrame) Error() string { return fmt.Sprintf("bad frame at offset %d: %s", e.off, e.why) }

// frameReader reads the frames of one segment.
type frameReader struct {
	br   *bufio.Reader
	off  int64 // offset of the next frame
	size int64 // segment size when the reader was made
	hdr  [headerSize]byte
}

func newFrameReader(f *os.File) (*frameReader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	return &frameReader{br: bufio.NewReaderSize(f, 64<<10), size: fi.Size()}, nil
}

// next reads the next frame's payload into buf, allocating if buf is too
// small. It returns io.EOF at the end of the segment and a *badFrame for a
// frame that is cut short or fails its checks.
func (r *frameReader) next(buf []byte) ([]byte, error) {
	left := r.size - r.off
	if left == 0 {
		return nil, io.EOF
	}
	if left < headerSize {
		return nil, &badFrame{r.off, "short header"}
	}
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return nil, r.readErr(err)
	}
	n := int64(binary.BigEndian.Uint32(r.hdr[0:]))
	if n < fieldsSize || n > maxPayload {
		return nil, &badFrame{r.off, fmt.Sprintf("length %d out of range", n)}
	}
	// Checking against the file size before allocating keeps a garbage
	// length from costing 256 MiB.
	if left-headerSize < n {
		return nil, &badFrame{r.off, fmt.Sprintf("length %d past end of segment", n)}
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return nil, r.readErr(err)
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(r.hdr[4:]) {
		return nil, &badFrame{r.off, "checksum mismatch"}
	}
	r.off += headerSize + n
	return buf, nil
}

// readErr maps an EOF short of the size the segment had (it shrank while we
// read it) to a bad frame and passes I/O errors through.
func (r *frameReader) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &badFrame{r.off, "segment shrank while reading"}
	}
	return err
}

// listSegments returns the ids of the segment files in dir, ascending. Other
// files are ignored.
func listSegments(dir string) ([]Segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var segs []Segment
	for _, de := range des {
		name := de.Name()
		if len(name) != 24 || filepath.Ext(name) != ".wal" || !de.Type().IsRegular() {
			continue
		}
		id, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, Segment(id))
	}
	slices.Sort(segs) // ReadDir sorts by name, but don't depend on the padding
	return segs, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}
