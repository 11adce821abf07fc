package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/spf13/pflag"
)

// testEntry returns a deterministic entry whose data depends on all fields,
// so a mix-up between entries shows as a data mismatch.
func testEntry(p, off int64, n int) Entry {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(p*31 + off*7 + int64(i))
	}
	return Entry{PartitionID: p, LeaderEpoch: int32(p%5) + 1, BaseOffset: off, Data: data}
}

func testEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = testEntry(int64(i%3), int64(i), (i*37)%300)
	}
	return es
}

func mustOpen(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func replayAll(t testing.TB, w *WAL) []Entry {
	t.Helper()
	var got []Entry
	if err := w.Replay(func(e Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

// reopenAll opens dir, replays it and closes it again.
func reopenAll(t testing.TB, dir string) []Entry {
	t.Helper()
	w := mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	return replayAll(t, w)
}

func checkEntries(t testing.TB, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PartitionID != w.PartitionID || g.LeaderEpoch != w.LeaderEpoch || g.BaseOffset != w.BaseOffset || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("entry %d: got {%d %d %d %d bytes}, want {%d %d %d %d bytes}", i,
				g.PartitionID, g.LeaderEpoch, g.BaseOffset, len(g.Data),
				w.PartitionID, w.LeaderEpoch, w.BaseOffset, len(w.Data))
		}
	}
}

func segmentsIn(t testing.TB, dir string) []Segment {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// writeSegment writes a segment file holding the frames of es.
func writeSegment(t testing.TB, dir string, s Segment, es ...Entry) []byte {
	t.Helper()
	var b []byte
	for _, e := range es {
		b = appendFrame(b, e)
	}
	if err := os.WriteFile(filepath.Join(dir, s.fileName()), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// crc32c is a bitwise CRC-32C, independent of hash/crc32, to pin the format.
func crc32c(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestFrameFormat(t *testing.T) {
	e := Entry{PartitionID: 0x0102030405060708, LeaderEpoch: 0x0a0b0c0d, BaseOffset: 0x1112131415161718, Data: []byte("hi")}
	payload := []byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // partitionID
		0x0a, 0x0b, 0x0c, 0x0d, // leaderEpoch
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, // baseOffset
		'h', 'i',
	}
	want := binary.BigEndian.AppendUint32(nil, 22)
	want = binary.BigEndian.AppendUint32(want, crc32c(payload))
	want = append(want, payload...)
	if got := appendFrame(nil, e); !bytes.Equal(got, want) {
		t.Fatalf("frame\n got % x\nwant % x", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        Options
		entries     []Entry
		rotateEvery int // explicit Rotate after this many appends; 0 for none
		minSegments int // segment files expected after the last session
	}{
		{name: "one segment", entries: testEntries(200), minSegments: 2},
		{name: "explicit rotations", entries: testEntries(200), rotateEvery: 7, minSegments: 20},
		{name: "automatic rotation", opts: Options{SegmentBytes: 1000}, entries: testEntries(200), minSegments: 20},
		{name: "sync always", opts: Options{Sync: SyncAlways}, entries: testEntries(100), rotateEvery: 10, minSegments: 10},
		{name: "sync every", opts: Options{Sync: SyncEvery(time.Millisecond), SegmentBytes: 4096}, entries: testEntries(200), minSegments: 5},
		{name: "empty data", entries: []Entry{testEntry(1, 0, 0), testEntry(1, 1, 0)}, minSegments: 2},
		{name: "entries above the pooled size", entries: []Entry{testEntry(1, 0, 3<<20), testEntry(2, 0, 10), testEntry(1, 1, 5<<20)}, minSegments: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			half := len(tc.entries) / 2
			appendAll := func(w *WAL, es []Entry) {
				for i, e := range es {
					if err := w.Append(e); err != nil {
						t.Fatalf("Append: %v", err)
					}
					if tc.rotateEvery > 0 && (i+1)%tc.rotateEvery == 0 {
						if _, err := w.Rotate(); err != nil {
							t.Fatalf("Rotate: %v", err)
						}
					}
				}
			}

			// Session 1 appends the first half; session 2 replays it and
			// appends the rest; session 3 must see both, in order.
			w := mustOpen(t, dir, tc.opts)
			checkEntries(t, replayAll(t, w), nil)
			appendAll(w, tc.entries[:half])
			mustClose(t, w)

			w = mustOpen(t, dir, tc.opts)
			checkEntries(t, replayAll(t, w), tc.entries[:half])
			appendAll(w, tc.entries[half:])
			mustClose(t, w)

			checkEntries(t, reopenAll(t, dir), tc.entries)
			if n := len(segmentsIn(t, dir)); n < tc.minSegments {
				t.Errorf("%d segment files, want at least %d", n, tc.minSegments)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	es := testEntries(4)
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, dir string) string // returns the dir to open
		want     []Entry
		wantSegs []Segment // segment files after Open
		wantCur  Segment   // segment appends go to
	}{{
		name:     "non-existent dir",
		setup:    func(t *testing.T, dir string) string { return filepath.Join(dir, "a", "b") },
		wantSegs: []Segment{1}, wantCur: 1,
	}, {
		name:     "empty dir",
		setup:    func(t *testing.T, dir string) string { return dir },
		wantSegs: []Segment{1}, wantCur: 1,
	}, {
		name: "leftover zero-length segment is reused",
		setup: func(t *testing.T, dir string) string {
			writeSegment(t, dir, 7)
			return dir
		},
		wantSegs: []Segment{7}, wantCur: 7,
	}, {
		name: "trailing zero-length segments",
		setup: func(t *testing.T, dir string) string {
			writeSegment(t, dir, 3, es[:2]...)
			writeSegment(t, dir, 4)
			writeSegment(t, dir, 5)
			return dir
		},
		want:     es[:2],
		wantSegs: []Segment{3, 5}, wantCur: 5,
	}, {
		name: "zero-length segment before data",
		setup: func(t *testing.T, dir string) string {
			writeSegment(t, dir, 2)
			writeSegment(t, dir, 3, es...)
			return dir
		},
		want:     es,
		wantSegs: []Segment{2, 3, 4}, wantCur: 4,
	}, {
		name: "segment holding only a torn frame is reused",
		setup: func(t *testing.T, dir string) string {
			b := writeSegment(t, dir, 1, es[0])
			os.WriteFile(filepath.Join(dir, Segment(1).fileName()), b[:len(b)-1], 0o644)
			return dir
		},
		wantSegs: []Segment{1}, wantCur: 1,
	}, {
		name: "torn tail before an empty segment",
		setup: func(t *testing.T, dir string) string {
			b := writeSegment(t, dir, 1, es...)
			os.WriteFile(filepath.Join(dir, Segment(1).fileName()), b[:len(b)-5], 0o644)
			writeSegment(t, dir, 2)
			return dir
		},
		want:     es[:3],
		wantSegs: []Segment{1, 2}, wantCur: 2,
	}, {
		name: "foreign files are ignored",
		setup: func(t *testing.T, dir string) string {
			for _, name := range []string{"1.wal", "notes.txt", "0000000000000000000x.wal"} {
				os.WriteFile(filepath.Join(dir, name), []byte("not a segment"), 0o644)
			}
			return dir
		},
		wantSegs: []Segment{1}, wantCur: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t, t.TempDir())
			w := mustOpen(t, dir, Options{})
			checkEntries(t, replayAll(t, w), tc.want)
			if got := segmentsIn(t, dir); !slices.Equal(got, tc.wantSegs) {
				t.Errorf("segments after Open: %v, want %v", got, tc.wantSegs)
			}
			if w.seg != tc.wantCur || w.Size() != 0 {
				t.Errorf("current segment %d of %d bytes, want %d, empty", w.seg, w.Size(), tc.wantCur)
			}
			extra := testEntry(9, 9, 9)
			if err := w.Append(extra); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			checkEntries(t, reopenAll(t, dir), append(slices.Clone(tc.want), extra))
		})
	}
}

func TestTornTail(t *testing.T) {
	older := testEntries(3)
	tail := []Entry{testEntry(1, 10, 5), testEntry(2, 11, 0), testEntry(1, 12, 40)}
	var olderSeg, tailSeg []byte
	for _, e := range older {
		olderSeg = appendFrame(olderSeg, e)
	}
	for _, e := range tail {
		tailSeg = appendFrame(tailSeg, e)
	}
	lastFrame := len(tailSeg) - len(appendFrame(nil, tail[len(tail)-1]))

	type damage struct {
		name string
		seg  []byte // segment 2 as found by Open
		keep int    // complete entries of segment 2 that must survive
	}
	var cases []damage
	for cut := lastFrame; cut < len(tailSeg); cut++ {
		cases = append(cases, damage{fmt.Sprintf("cut at %d", cut), tailSeg[:cut], len(tail) - 1})
	}
	for i := lastFrame; i < len(tailSeg); i++ {
		b := slices.Clone(tailSeg)
		b[i] ^= 0x40
		cases = append(cases, damage{fmt.Sprintf("flip at %d", i), b, len(tail) - 1})
	}
	zeroed := slices.Clone(tailSeg)
	clear(zeroed[lastFrame:])
	cases = append(cases,
		damage{"zeroed last frame", zeroed, len(tail) - 1},
		damage{"zeros after the last frame", append(slices.Clone(tailSeg), make([]byte, 4096)...), len(tail)},
		damage{"short garbage after the last frame", append(slices.Clone(tailSeg), 1, 2, 3), len(tail)},
	)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, Segment(1).fileName()), olderSeg, 0o644)
			os.WriteFile(filepath.Join(dir, Segment(2).fileName()), tc.seg, 0o644)
			want := append(slices.Clone(older), tail[:tc.keep]...)

			w := mustOpen(t, dir, Options{})
			checkEntries(t, replayAll(t, w), want)
			fi, err := os.Stat(filepath.Join(dir, Segment(2).fileName()))
			if err != nil {
				t.Fatal(err)
			}
			if wantSize := len(appendFramesOf(tail[:tc.keep])); fi.Size() != int64(wantSize) {
				t.Errorf("segment 2 is %d bytes after Open, want %d", fi.Size(), wantSize)
			}
			extra := testEntry(7, 99, 33)
			if err := w.Append(extra); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			checkEntries(t, reopenAll(t, dir), append(want, extra))
		})
	}
}

func appendFramesOf(es []Entry) []byte {
	var b []byte
	for _, e := range es {
		b = appendFrame(b, e)
	}
	return b
}

func TestCorruptOlderSegment(t *testing.T) {
	es := testEntries(3)
	good := appendFramesOf(es)
	frame2 := len(appendFrame(nil, es[0]))
	frame3 := frame2 + len(appendFrame(nil, es[1]))
	withLength := func(n uint32) []byte {
		b := slices.Clone(good)
		binary.BigEndian.PutUint32(b[frame2:], n)
		return b
	}
	flipped := slices.Clone(good)
	flipped[frame2+headerSize+fieldsSize] ^= 1

	for _, tc := range []struct {
		name    string
		seg     []byte
		badAt   int // offset the error must name
		entries int // entries fn sees before the error
	}{
		{"flipped data byte", flipped, frame2, 1},
		{"length beyond the maximum", withLength(maxPayload + 1), frame2, 1},
		{"length below the minimum", withLength(fieldsSize - 1), frame2, 1},
		{"length past end of segment", withLength(1 << 20), frame2, 1},
		{"cut inside a frame", good[:frame3+10], frame3, 2},
		{"cut inside a header", good[:frame3+3], frame3, 2},
		{"garbage after the last frame", append(slices.Clone(good), 0, 0, 0, 0, 0, 0, 0, 0, 0), len(good), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, Segment(1).fileName()), tc.seg, 0o644)
			writeSegment(t, dir, 2, testEntry(5, 5, 5))

			w := mustOpen(t, dir, Options{})
			defer mustClose(t, w)
			var n int
			err := w.Replay(func(Entry) error { n++; return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Replay: %v, want ErrCorrupt", err)
			}
			if where := fmt.Sprintf("segment 1 offset %d", tc.badAt); !strings.Contains(err.Error(), where) {
				t.Errorf("error %q does not name %q", err, where)
			}
			if n != tc.entries {
				t.Errorf("fn saw %d entries before the error, want %d", n, tc.entries)
			}
			// Corruption is reported, never repaired.
			if b, _ := os.ReadFile(filepath.Join(dir, Segment(1).fileName())); !bytes.Equal(b, tc.seg) {
				t.Error("Open modified the corrupt segment")
			}
		})
	}
}

func TestReplayStopsAtCallbackError(t *testing.T) {
	dir := t.TempDir()
	writeSegment(t, dir, 1, testEntries(5)...)
	w := mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	stop := errors.New("stop")
	var n int
	err := w.Replay(func(Entry) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("Replay returned %v after %d entries, want the callback's error after 2", err, n)
	}
}

func TestRemoveBefore(t *testing.T) {
	// Four segments of three entries each; ids[i] is the segment holding
	// groups[i].
	setup := func(t *testing.T) (string, *WAL, []Segment, [][]Entry) {
		dir := t.TempDir()
		w := mustOpen(t, dir, Options{})
		var ids []Segment
		var groups [][]Entry
		for g := range 4 {
			ids = append(ids, w.seg)
			var group []Entry
			for i := range 3 {
				e := testEntry(int64(g), int64(i), 10)
				if err := w.Append(e); err != nil {
					t.Fatal(err)
				}
				group = append(group, e)
			}
			groups = append(groups, group)
			if g < 3 {
				if _, err := w.Rotate(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return dir, w, ids, groups
	}

	for _, tc := range []struct {
		name string
		keep int // index of the first group left; RemoveBefore(ids[keep])
	}{
		{"nothing", 0},
		{"first segment", 1},
		{"all but the current segment", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, w, ids, groups := setup(t)
			if err := w.RemoveBefore(ids[tc.keep]); err != nil {
				t.Fatal(err)
			}
			if got := segmentsIn(t, dir); !slices.Equal(got, ids[tc.keep:]) {
				t.Errorf("segments %v, want %v", got, ids[tc.keep:])
			}
			mustClose(t, w)
			checkEntries(t, reopenAll(t, dir), slices.Concat(groups[tc.keep:]...))
		})
	}

	t.Run("segment 0", func(t *testing.T) {
		dir, w, ids, _ := setup(t)
		defer mustClose(t, w)
		if err := w.RemoveBefore(0); err != nil {
			t.Fatal(err)
		}
		if got := segmentsIn(t, dir); !slices.Equal(got, ids) {
			t.Errorf("segments %v, want %v", got, ids)
		}
	})
	t.Run("past the current segment", func(t *testing.T) {
		dir, w, ids, _ := setup(t)
		defer mustClose(t, w)
		if err := w.RemoveBefore(ids[3] + 1); err == nil {
			t.Fatal("RemoveBefore past the current segment succeeded")
		}
		if got := segmentsIn(t, dir); !slices.Equal(got, ids) {
			t.Errorf("segments %v, want %v", got, ids)
		}
	})
	t.Run("replayed segments after reopen", func(t *testing.T) {
		// The restart path: replay, then drop what was replayed.
		dir, w, _, groups := setup(t)
		mustClose(t, w)
		w = mustOpen(t, dir, Options{})
		checkEntries(t, replayAll(t, w), slices.Concat(groups...))
		s, err := w.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.RemoveBefore(s); err != nil {
			t.Fatal(err)
		}
		mustClose(t, w)
		checkEntries(t, reopenAll(t, dir), nil)
	})
}

func TestRotateEmptySegment(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{})
	defer mustClose(t, w)
	s1, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || s1 != w.first {
		t.Fatalf("Rotate on an empty segment returned %d then %d, want %d twice", s1, s2, w.first)
	}
}

func TestConcurrentAppendRotate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"sync never", Options{SegmentBytes: 16 << 10}},
		{"sync always", Options{SegmentBytes: 16 << 10, Sync: SyncAlways}},
		{"sync every", Options{SegmentBytes: 16 << 10, Sync: SyncEvery(time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const appenders, perAppender = 8, 300
			dir := t.TempDir()
			w := mustOpen(t, dir, tc.opts)

			// bound records that entry (p, off) was appended before a Rotate
			// that returned before.
			type bound struct {
				p, off int64
				before Segment
			}
			var boundsMu sync.Mutex
			var bounds []bound

			stop := make(chan struct{})
			var rotator sync.WaitGroup
			rotator.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := w.Rotate(); err != nil {
						t.Error(err)
						return
					}
					_ = w.Size()
					if err := w.Sync(); err != nil {
						t.Error(err)
						return
					}
				}
			})
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Go(func() {
					for i := range perAppender {
						if err := w.Append(testEntry(int64(g), int64(i), (g*i)%700)); err != nil {
							t.Error(err)
							return
						}
						if i%25 == 0 {
							s, err := w.Rotate()
							if err != nil {
								t.Error(err)
								return
							}
							boundsMu.Lock()
							bounds = append(bounds, bound{int64(g), int64(i), s})
							boundsMu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			rotator.Wait()
			mustClose(t, w)

			// Where each entry landed, read segment by segment.
			type key struct{ p, off int64 }
			where := map[key]Segment{}
			for _, s := range segmentsIn(t, dir) {
				err := replaySegment(dir, s, func(e Entry) error {
					k := key{e.PartitionID, e.BaseOffset}
					if prev, dup := where[k]; dup {
						return fmt.Errorf("entry %v in segments %d and %d", k, prev, s)
					}
					where[k] = s
					if want := testEntry(e.PartitionID, e.BaseOffset, len(e.Data)); !bytes.Equal(e.Data, want.Data) || e.LeaderEpoch != want.LeaderEpoch {
						return fmt.Errorf("entry %v garbled", k)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(where) != appenders*perAppender {
				t.Fatalf("%d distinct entries on disk, want %d", len(where), appenders*perAppender)
			}
			for _, b := range bounds {
				if s := where[key{b.p, b.off}]; s >= b.before {
					t.Errorf("entry %d/%d in segment %d, appended before Rotate returned %d", b.p, b.off, s, b.before)
				}
			}

			// Replay keeps each appender's order.
			next := make([]int64, appenders)
			for _, e := range reopenAll(t, dir) {
				if e.BaseOffset != next[e.PartitionID] {
					t.Fatalf("appender %d: replayed offset %d, want %d", e.PartitionID, e.BaseOffset, next[e.PartitionID])
				}
				next[e.PartitionID]++
			}
		})
	}
}

func syncLoopRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte("wal.(*WAL).syncLoop"))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitSyncLoop waits up to 10s for syncLoopRunning to become running: a
// goroutine can be late to start or to finish, the more so on a busy
// machine.
func waitSyncLoop(running bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return poll.Wait(ctx, poll.True(func() bool { return syncLoopRunning() == running })) == nil
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{Sync: SyncEvery(time.Millisecond)})
	if !waitSyncLoop(true) {
		t.Fatal("no sync goroutine after Open with SyncEvery")
	}
	e := testEntry(1, 1, 100)
	if err := w.Append(e); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the loop tick at least once
	mustClose(t, w)
	// Close waits for the loop, which may still be unwinding its defers.
	if !waitSyncLoop(false) {
		t.Fatal("sync goroutine still running after Close")
	}

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Append", func() error { return w.Append(e) }},
		{"Rotate", func() error { _, err := w.Rotate(); return err }},
		{"RemoveBefore", func() error { return w.RemoveBefore(0) }},
		{"Replay", func() error { return w.Replay(func(Entry) error { return nil }) }},
		{"Sync", w.Sync},
		{"Close", w.Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", tc.name, err)
			}
		})
	}
	checkEntries(t, reopenAll(t, dir), []Entry{e})
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	mustClose(t, w)
	mustClose(t, mustOpen(t, dir, Options{}))
}

func TestAppendTooLarge(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{})
	defer mustClose(t, w)
	if err := w.Append(Entry{Data: make([]byte, MaxDataSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append: %v, want ErrTooLarge", err)
	}
	if w.Size() != 0 {
		t.Fatalf("rejected entry left %d bytes", w.Size())
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"zero value", Options{}, false},
		{"sync always", Options{Sync: SyncAlways}, false},
		{"sync every", Options{Sync: SyncEvery(time.Second)}, false},
		{"negative segment size", Options{SegmentBytes: -1}, true},
		{"invalid sync policy", Options{Sync: -2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate: %v, want error %v", err, tc.wantErr)
			}
			w, err := Open(t.TempDir(), tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Open: %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				// An open WAL's sync goroutine would outlive the test and
				// fail TestClose when the tests run again (-count).
				mustClose(t, w)
			}
		})
	}
}

func TestSyncPolicyFlag(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    SyncPolicy
		wantErr bool
	}{
		{arg: "never", want: SyncNever},
		{arg: "always", want: SyncAlways},
		{arg: "250ms", want: SyncEvery(250 * time.Millisecond)},
		{arg: "0s", wantErr: true},
		{arg: "-1s", wantErr: true},
		{arg: "sometimes", wantErr: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			var o Options
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			fs.SetOutput(&bytes.Buffer{})
			o.RegisterFlags(fs)
			if o != DefaultOptions() || o.SegmentBytes != DefaultSegmentBytes || o.Sync != SyncNever {
				t.Fatalf("defaults: %+v", o)
			}
			err := fs.Parse([]string{"--wal-sync=" + tc.arg})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Parse: %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (o.Sync != tc.want || o.Sync.String() != tc.arg) {
				t.Fatalf("parsed %q as %v (%d), want %v", tc.arg, o.Sync, o.Sync, tc.want)
			}
		})
	}
	if SyncEvery(0) != SyncAlways {
		t.Error("SyncEvery(0) is not SyncAlways")
	}
}

// FuzzReplay writes arbitrary bytes as segment 1. As the only segment it is
// the tail: Open must keep exactly its longest prefix of complete frames. With
// a valid segment 2 after it, Replay must deliver a prefix and then either
// finish or report ErrCorrupt.
func FuzzReplay(f *testing.F) {
	good := appendFramesOf([]Entry{testEntry(1, 0, 10), testEntry(2, 5, 0)})
	flipped := slices.Clone(good)
	flipped[12] ^= 1
	for _, seed := range [][]byte{
		nil,
		good,
		good[:len(good)-3],
		good[:5],
		flipped,
		{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		{0, 0, 0, 20, 0, 0, 0, 0},
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, older bool) {
		dir := t.TempDir()
		seg1 := filepath.Join(dir, Segment(1).fileName())
		if err := os.WriteFile(seg1, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sentinel := Entry{PartitionID: -1, BaseOffset: -1, Data: []byte("sentinel")}
		if older {
			writeSegment(t, dir, 2, sentinel)
		}
		w, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var replayed []byte
		err = w.Replay(func(e Entry) error { replayed = appendFrame(replayed, e); return nil })
		if older {
			mustClose(t, w)
			switch {
			case err == nil:
				if want := append(slices.Clone(data), appendFrame(nil, sentinel)...); !bytes.Equal(replayed, want) {
					t.Fatal("Replay succeeded but did not return every frame")
				}
			case errors.Is(err, ErrCorrupt):
				if !bytes.HasPrefix(data, replayed) || len(replayed) == len(data) {
					t.Fatalf("Replay failed with %v after entries that are not a proper prefix", err)
				}
			default:
				t.Fatalf("Replay: %v", err)
			}
			return
		}

		if err != nil {
			t.Fatalf("Replay of the tail segment: %v", err)
		}
		if !bytes.HasPrefix(data, replayed) {
			t.Fatal("replayed entries are not a prefix of the segment")
		}
		if validFrameAt(data[len(replayed):]) {
			t.Fatalf("Open dropped a complete frame at offset %d", len(replayed))
		}
		extra := testEntry(3, 3, 3)
		if err := w.Append(extra); err != nil {
			t.Fatal(err)
		}
		mustClose(t, w)
		var again []byte
		for _, e := range reopenAll(t, dir) {
			again = appendFrame(again, e)
		}
		if want := appendFrame(slices.Clone(replayed), extra); !bytes.Equal(again, want) {
			t.Fatal("after reopen, Replay did not return the kept prefix and the new entry")
		}
	})
}

// validFrameAt reports whether b starts with a complete, intact frame,
// checked without the package's reader.
func validFrameAt(b []byte) bool {
	if len(b) < headerSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < fieldsSize || n > maxPayload || len(b)-headerSize < n {
		return false
	}
	return crc32c(b[headerSize:headerSize+n]) == binary.BigEndian.Uint32(b[4:])
}

func BenchmarkAppend(b *testing.B) {
	data := make([]byte, 16<<10)
	for i := range data {
		data[i] = byte(i)
	}
	// Like the flusher, drop old segments now and then so the benchmark
	// doesn't fill the disk.
	const removeEvery = 4096
	for _, bc := range []struct {
		name     string
		parallel bool
	}{
		{"serial", false},
		{"parallel", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := mustOpen(b, b.TempDir(), Options{Sync: SyncNever})
			defer mustClose(b, w)
			var n atomic.Int64
			appendOne := func() error {
				if err := w.Append(Entry{PartitionID: 1, LeaderEpoch: 1, BaseOffset: n.Load(), Data: data}); err != nil {
					return err
				}
				if n.Add(1)%removeEvery == 0 {
					s, err := w.Rotate()
					if err != nil {
						return err
					}
					return w.RemoveBefore(s)
				}
				return nil
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := appendOne(); err != nil {
							b.Error(err) // not Fatal: this is not the benchmark's goroutine
							return
						}
					}
				})
				return
			}
			for b.Loop() {
				if err := appendOne(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
