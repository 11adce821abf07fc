// Package cache serves byte ranges of objects through a bounded on-disk
// cache of fixed-size blocks, with read-ahead for sequential readers, so
// reading old data costs about one ranged GET per block however small the
// reads are, and reading a whole topic does not push out what tailing
// readers keep coming back to.
//
// An object is cut into blocks aligned to BlockBytes from its start:
//
//	object  |<---- block 0 ---->|<---- block 1 ---->|<- block 2 ->|
//	        0                   B                  2B          size
//
// A read of [off, off+n) fetches the blocks it touches that are not cached
// (one GetRange each, the last block short; up to Parallelism of them at
// once), stores each as a file in Dir and copies out the bytes asked for.
// A GET never covers more than the blocks a read touches: a small read of
// a large object costs one block, not the object. After a miss on block i
// the next ReadAhead blocks of the same object are fetched in the
// background; Prefetch fetches ranges a caller expects to read next (the
// partition leader asks for the index rows its consumer's next fetch
// needs, wherever they are).
//
// Read-ahead is bounded: at most ReadAheadBytes are queued or in flight
// for Prefetch and ReadAhead at any time (further hints are dropped and
// counted), and at most Parallelism background GETs run at once.
//
// Cache policy: segmented LRU. Blocks enter a probation segment of at
// most ScanBytes; a block moves to the protected segment (the rest of
// MaxBytes) only when a reader reads bytes of it that were read before:
// a tailing or repeated reader. (A reader that stopped inside a read it
// made says so with Unread: its next read is not a re-read.) The cache
// remembers which bytes of the last MaxBytes/BlockBytes blocks evicted
// from probation were read (no data), so a re-read after eviction counts
// too, and a straggler reading other bytes of an evicted block does not.
// A full-topic scan reads every block's
// bytes once, in disjoint pieces (the chunks of an object never overlap),
// so it cycles through probation and never evicts protected blocks.
// Protected blocks beyond their share are demoted to probation, not
// dropped. Objects are immutable (Eddy never rewrites a key with other
// bytes), so cached blocks never go stale. The cache is rebuilt from
// nothing on Open: a wiped or lost directory costs GETs, never
// correctness. Memory: one block per GET in flight (Parallelism for
// read-ahead plus one per waiting reader), nothing else in proportion to
// the data.
//
// Metrics (GETs per MiB is the ratio of the first two):
//
//	eddy_remote_gets_total                     GetRange calls made for readers (read-ahead included)
//	eddy_remote_read_bytes_total               bytes returned to readers
//	eddy_remote_get_bytes_total                bytes the GETs returned
//	eddy_remote_gets_per_mib                   the first two divided, since start
//	eddy_remote_cache_hits_total               blocks served from disk
//	eddy_remote_cache_misses_total             blocks fetched while a reader waited (read-ahead misses)
//	eddy_remote_read_ahead_hits_total          blocks a reader found fetched (or being fetched) by read-ahead
//	eddy_remote_read_ahead_dropped_total       read-ahead blocks not fetched: ReadAheadBytes was queued already
//	eddy_remote_read_ahead_wasted_bytes_total  read-ahead bytes evicted before anyone read them
//	eddy_remote_first_read_bytes_total         bytes of fetched blocks readers read for the first time
//	eddy_remote_get_again_bytes_total          bytes fetched again for blocks read and evicted before
//	eddy_remote_cache_bytes                    bytes on disk
//	eddy_remote_cache_protected_bytes          of which in the protected segment
//
// All methods are safe for concurrent use; concurrent reads of one missing
// block share one GET.
package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Config tunes a Cache.
type Config struct {
	// Dir holds the cached blocks; Open and Close remove the blocks in it
	// (and nothing else).
	Dir string
	// MaxBytes bounds the bytes kept in Dir.
	MaxBytes int64
	// BlockBytes is the size of one cached block and so the most one GET
	// asks for: smaller blocks fetch less around a small read, larger ones
	// make fewer GETs per GiB.
	BlockBytes int64
	// ReadAhead is how many blocks after a missed one are fetched in the
	// background (0: none). Blocks of one object need not belong to the
	// same partition (a flush writes many partitions into one object), so
	// the leader's Prefetch of the next index rows is the read-ahead that
	// follows a consumer; this one suits readers of single-partition
	// objects.
	ReadAhead int
	// ScanBytes bounds the probation segment: blocks read once, and
	// read-ahead not read yet. The rest of MaxBytes keeps blocks read again.
	ScanBytes int64
	// ReadAheadBytes bounds the bytes of read-ahead queued or in flight.
	ReadAheadBytes int64
	// Parallelism bounds the background GETs running at once, and the GETs
	// one read of several blocks runs at once.
	Parallelism int
}

// DefaultConfig returns the defaults the flags start from. Dir has none:
// the broker puts it under its data directory.
func DefaultConfig() Config {
	return Config{MaxBytes: 1 << 30, BlockBytes: 1 << 20, ReadAhead: 0,
		ScanBytes: 256 << 20, ReadAheadBytes: 128 << 20, Parallelism: 8}
}

// RegisterFlags registers the cache's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Dir, "remote-cache-dir", d.Dir, "on-disk cache of object-store reads (default: <data-dir>/cache)")
	fs.Int64Var(&c.MaxBytes, "remote-cache-bytes", d.MaxBytes, "size bound of the on-disk read cache")
	fs.Int64Var(&c.BlockBytes, "remote-cache-block-bytes", d.BlockBytes, "block size of the read cache: the most one ranged GET asks for")
	fs.IntVar(&c.ReadAhead, "remote-read-ahead", d.ReadAhead, "blocks of the same object fetched after a missed one (the leader prefetches the next index rows regardless)")
	fs.Int64Var(&c.ScanBytes, "remote-cache-scan-bytes", d.ScanBytes, "part of the read cache for data read once (scans, read-ahead); data read again is kept in the rest")
	fs.Int64Var(&c.ReadAheadBytes, "remote-read-ahead-bytes", d.ReadAheadBytes, "read-ahead bytes queued or in flight at most; further read-ahead is dropped")
	fs.IntVar(&c.Parallelism, "remote-get-parallelism", d.Parallelism, "background ranged GETs at once, and GETs at once for one read of several blocks")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("cache: a directory (--remote-cache-dir) is required")
	case c.BlockBytes <= 0:
		return fmt.Errorf("cache: --remote-cache-block-bytes must be positive, got %d", c.BlockBytes)
	case c.MaxBytes < 2*c.BlockBytes:
		return fmt.Errorf("cache: --remote-cache-bytes (%d) must hold at least two blocks of %d", c.MaxBytes, c.BlockBytes)
	case c.ReadAhead < 0:
		return fmt.Errorf("cache: --remote-read-ahead must not be negative, got %d", c.ReadAhead)
	case c.ScanBytes < c.BlockBytes || c.ScanBytes > c.MaxBytes-c.BlockBytes:
		return fmt.Errorf("cache: --remote-cache-scan-bytes (%d) must hold a block of %d and leave one of --remote-cache-bytes (%d)", c.ScanBytes, c.BlockBytes, c.MaxBytes)
	case c.ReadAheadBytes < 0:
		return fmt.Errorf("cache: --remote-read-ahead-bytes must not be negative, got %d", c.ReadAheadBytes)
	case c.Parallelism < 1:
		return fmt.Errorf("cache: --remote-get-parallelism must be at least 1, got %d", c.Parallelism)
	}
	return nil
}

// ErrClosed is returned by reads after Close.
var ErrClosed = errors.New("cache: closed")

type blockID struct {
	key   string
	index int64
}

// Segments of the cache (see the package doc).
const (
	probation = iota
	protected
)

// span is a range of a block's bytes returned to readers.
type span struct{ lo, hi int64 }

// maxSpans bounds the spans an entry remembers; beyond them a read is
// taken for a first one (a scan is never promoted by mistake).
const maxSpans = 16

type entry struct {
	id    blockID
	size  int64
	seg   int
	elem  *list.Element
	ahead bool   // fetched by read-ahead and not read since
	read  []span // disjoint, sorted: what readers have had of it
	// handed is what readers gave back with Unread (read once, not
	// used), so that reading it then is no first read for the metrics.
	handed []span
}

// reread records [lo, hi) as read and reports whether any of it was read
// before.
func (e *entry) reread(lo, hi int64) bool {
	i := 0
	for ; i < len(e.read) && e.read[i].hi < lo; i++ {
	}
	// e.read[i:] end at or after lo; those starting at or before hi touch
	// [lo, hi) and merge with it.
	j := i
	again := false
	m := span{lo, hi}
	for ; j < len(e.read) && e.read[j].lo <= hi; j++ {
		s := e.read[j]
		if s.lo < hi && s.hi > lo {
			again = true
		}
		m = span{min(m.lo, s.lo), max(m.hi, s.hi)}
	}
	if len(e.read)-(j-i)+1 > maxSpans {
		return again
	}
	e.read = append(e.read[:i], append([]span{m}, e.read[j:]...)...)
	return again
}

// unread forgets that [lo, hi) was read.
func (e *entry) unread(lo, hi int64) {
	var out []span
	for _, s := range e.read {
		if s.hi <= lo || s.lo >= hi {
			out = append(out, s)
			continue
		}
		if s.lo < lo {
			out = append(out, span{s.lo, lo})
		}
		if s.hi > hi {
			out = append(out, span{hi, s.hi})
		}
		if len(e.handed) < maxSpans {
			e.handed = append(e.handed, span{max(s.lo, lo), min(s.hi, hi)})
		}
	}
	e.read = out
}

// firstRead is how many bytes of [lo, hi), about to be recorded as read,
// no reader has had before: neither read nor handed back with Unread.
func (e *entry) firstRead(lo, hi int64) int64 {
	n := hi - lo
	for _, s := range e.read {
		n -= max(0, min(s.hi, hi)-max(s.lo, lo))
	}
	var kept []span
	for _, s := range e.handed {
		// Handed-back bytes count once: read again, they are read.
		if o := min(s.hi, hi) - max(s.lo, lo); o > 0 {
			for _, r := range e.read {
				o -= max(0, min(s.hi, hi, r.hi)-max(s.lo, lo, r.lo))
			}
			n -= o
			if s.lo < lo {
				kept = append(kept, span{s.lo, lo})
			}
			if s.hi > hi {
				kept = append(kept, span{hi, s.hi})
			}
			continue
		}
		kept = append(kept, s)
	}
	e.handed = kept
	return max(n, 0)
}

// ghost is what the cache remembers of a block read and then evicted from
// probation: which bytes were read, so that reading them again (and only
// that) counts as a re-read.
type ghost struct {
	elem *list.Element // in Cache.ghostQ
	read []span
}

type call struct {
	done    chan struct{}
	data    []byte
	err     error
	ahead   bool // started by read-ahead
	claimed bool // a reader waited for it: not read-ahead nobody read
}

// Cache is an on-disk block cache in front of a bucket.
type Cache struct {
	cfg Config
	b   bucket.Bucket

	ctx    context.Context // ends on Close; background GETs run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{} // bounds concurrent background GETs

	mu        sync.Mutex
	entries   map[blockID]*entry
	lru       [2]*list.List // per segment; front: most recently used
	size      [2]int64      // per segment
	inflight  map[blockID]*call
	aheadSize int64 // read-ahead bytes queued or in flight
	ghosts    map[blockID]*ghost
	ghostQ    *list.List // of blockID, oldest at the front
	closed    bool

	gets, readBytes, getBytes, hits, misses atomic.Int64
	aheadHits, aheadDropped, aheadWasted    atomic.Int64
	aheadPeak                               atomic.Int64
	firstBytes, againBytes                  atomic.Int64
}

// Open empties cfg.Dir and returns a cache reading through b. reg may be nil.
func Open(cfg Config, b bucket.Bucket, reg prometheus.Registerer) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := removeBlocks(cfg.Dir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		cfg: cfg, b: b, ctx: ctx, cancel: cancel,
		sem:      make(chan struct{}, cfg.Parallelism),
		entries:  map[blockID]*entry{},
		lru:      [2]*list.List{list.New(), list.New()},
		inflight: map[blockID]*call{},
		ghosts:   map[blockID]*ghost{},
		ghostQ:   list.New(),
	}
	if reg != nil {
		counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(v.Load()) })
		}
		gauge := func(name, help string, f func(Stats) int64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
				func() float64 { return float64(f(c.Stats())) })
		}
		reg.MustRegister(
			counter("eddy_remote_gets_total", "Ranged GETs made to read old data (read-ahead included).", &c.gets),
			counter("eddy_remote_read_bytes_total", "Bytes of old data returned to readers.", &c.readBytes),
			counter("eddy_remote_get_bytes_total", "Bytes the ranged GETs for old data returned (read-ahead included).", &c.getBytes),
			counter("eddy_remote_cache_hits_total", "Blocks served from the on-disk read cache.", &c.hits),
			counter("eddy_remote_cache_misses_total", "Blocks fetched from the object store while a reader waited (read-ahead misses).", &c.misses),
			counter("eddy_remote_read_ahead_hits_total", "Blocks a reader found fetched, or being fetched, by read-ahead.", &c.aheadHits),
			counter("eddy_remote_read_ahead_dropped_total", "Read-ahead blocks not fetched because the read-ahead bound was reached.", &c.aheadDropped),
			counter("eddy_remote_read_ahead_wasted_bytes_total", "Read-ahead bytes evicted before any reader read them.", &c.aheadWasted),
			counter("eddy_remote_first_read_bytes_total", "Bytes of fetched blocks that readers read for the first time (the GET bytes beyond them were not needed, or not yet).", &c.firstBytes),
			counter("eddy_remote_get_again_bytes_total", "Bytes fetched again for blocks that readers had read before they were evicted.", &c.againBytes),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eddy_remote_gets_per_mib", Help: "Ranged GETs per MiB of old data read, since start."},
				func() float64 { return c.Stats().GetsPerMiB() }),
			gauge("eddy_remote_cache_bytes", "Bytes held by the on-disk read cache.", func(s Stats) int64 { return s.CachedBytes }),
			gauge("eddy_remote_cache_protected_bytes", "Bytes of the read cache in its protected segment (read more than once).", func(s Stats) int64 { return s.ProtectedBytes }))
	}
	return c, nil
}

// Stats are counters since Open, and the cache's current sizes.
type Stats struct {
	Gets, ReadBytes, GetBytes, Hits, Misses int64
	// ReadAheadHits counts blocks readers found fetched (or being
	// fetched) by read-ahead; ReadAheadDropped, read-ahead blocks not
	// fetched at the bound; ReadAheadWasted, read-ahead bytes evicted
	// unread; ReadAheadPeak, the most read-ahead bytes ever queued or in
	// flight at once (at most Config.ReadAheadBytes).
	ReadAheadHits, ReadAheadDropped, ReadAheadWasted, ReadAheadPeak int64
	// FirstReadBytes counts the bytes of fetched blocks that readers read
	// for the first time: GetBytes beyond it and AgainBytes were fetched
	// and not needed (yet). AgainBytes counts GET bytes of blocks fetched
	// again after readers had read them and they were evicted.
	FirstReadBytes, AgainBytes  int64
	CachedBytes, ProtectedBytes int64
}

// GetsPerMiB is Gets divided by ReadBytes in MiB (0 before any read).
func (s Stats) GetsPerMiB() float64 {
	if s.ReadBytes == 0 {
		return 0
	}
	return float64(s.Gets) / (float64(s.ReadBytes) / (1 << 20))
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	size, prot := c.size[probation]+c.size[protected], c.size[protected]
	c.mu.Unlock()
	return Stats{
		Gets: c.gets.Load(), ReadBytes: c.readBytes.Load(), GetBytes: c.getBytes.Load(),
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		ReadAheadHits: c.aheadHits.Load(), ReadAheadDropped: c.aheadDropped.Load(),
		ReadAheadWasted: c.aheadWasted.Load(), ReadAheadPeak: c.aheadPeak.Load(),
		FirstReadBytes: c.firstBytes.Load(), AgainBytes: c.againBytes.Load(),
		CachedBytes: size, ProtectedBytes: prot,
	}
}

// ReadRange returns n bytes at off of the object key whose size is
// objSize. With objSize < 0 (unknown) it bypasses the cache and reads the
// exact range.
func (c *Cache) ReadRange(ctx context.Context, key string, objSize, off, n int64) ([]byte, error) {
	if objSize < 0 {
		c.gets.Add(1)
		data, err := c.b.GetRange(ctx, key, off, n)
		c.getBytes.Add(int64(len(data)))
		c.readBytes.Add(int64(len(data)))
		return data, err
	}
	if off < 0 || n < 0 || off+n > objSize {
		return nil, fmt.Errorf("cache: %w: [%d, %d) of %d-byte %s", bucket.ErrRange, off, off+n, objSize, key)
	}
	out := make([]byte, 0, n)
	B := c.cfg.BlockBytes
	first, last := off/B, (off+n-1)/B
	for i := first; i*B < off+n; i++ {
		// The blocks after this one that the read needs are fetched at
		// the same time, a window of Parallelism at most.
		for j := i + 1; j <= min(last, i+int64(c.cfg.Parallelism)-1); j++ {
			c.fetchAsync(blockID{key, j}, objSize, false)
		}
		lo, hi := max(off, i*B)-i*B, min(off+n, (i+1)*B)-i*B
		part, more, err := c.block(ctx, blockID{key, i}, objSize, lo, hi)
		if err != nil {
			return nil, err
		}
		if more {
			c.readAhead(key, objSize, i)
		}
		out = append(out, part...)
	}
	c.readBytes.Add(n)
	return out, nil
}

// Unread tells the cache that the bytes [off, off+n) of key, returned by
// a ReadRange, went unused (a fetch that filled up before them), so that
// reading them later is a first read, not a re-read that would protect
// them.
func (c *Cache) Unread(key string, objSize, off, n int64) {
	if objSize < 0 || off < 0 || n <= 0 || off+n > objSize {
		return
	}
	B := c.cfg.BlockBytes
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := off / B; i*B < off+n; i++ {
		if e := c.entries[blockID{key, i}]; e != nil {
			e.unread(max(off, i*B)-i*B, min(off+n, (i+1)*B)-i*B)
		}
	}
}

// Prefetch fetches the blocks holding [off, off+n) of key in the
// background, for a reader expected to ask for them soon. It is a hint:
// past ReadAheadBytes queued, blocks are dropped.
func (c *Cache) Prefetch(key string, objSize, off, n int64) {
	if objSize < 0 || off < 0 || n <= 0 || off+n > objSize {
		return
	}
	B := c.cfg.BlockBytes
	for i := off / B; i*B < off+n; i++ {
		c.fetchAsync(blockID{key, i}, objSize, true)
	}
}

func (c *Cache) readAhead(key string, objSize, i int64) {
	for j := i + 1; j <= i+int64(c.cfg.ReadAhead) && j*c.cfg.BlockBytes < objSize; j++ {
		c.fetchAsync(blockID{key, j}, objSize, true)
	}
}

// fetchAsync fetches a block in the background unless it is cached or
// being fetched. Read-ahead (ahead) counts against ReadAheadBytes and is
// dropped beyond it; the blocks of a read in progress are not.
func (c *Cache) fetchAsync(id blockID, objSize int64, ahead bool) {
	n := min(c.cfg.BlockBytes, objSize-id.index*c.cfg.BlockBytes)
	c.mu.Lock()
	if c.closed || c.entries[id] != nil || c.inflight[id] != nil {
		c.mu.Unlock()
		return
	}
	if ahead {
		if c.aheadSize+n > c.cfg.ReadAheadBytes {
			c.mu.Unlock()
			c.aheadDropped.Add(1)
			return
		}
		c.aheadSize += n
		if c.aheadSize > c.aheadPeak.Load() {
			c.aheadPeak.Store(c.aheadSize)
		}
	}
	cl := &call{done: make(chan struct{}), ahead: ahead}
	c.inflight[id] = cl
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		if ahead {
			defer func() {
				c.mu.Lock()
				c.aheadSize -= n
				c.mu.Unlock()
			}()
		}
		select {
		case c.sem <- struct{}{}:
			defer func() { <-c.sem }()
		case <-c.ctx.Done():
		}
		c.fetch(c.ctx, id, objSize, cl)
	}()
}

// block returns bytes [lo, hi) of one block, read from its file (only
// those bytes: a small read of a large cached block stays small) or from
// the fetched block; more says the reader is sequential, so read-ahead
// should go on: the block had to be fetched, the reader waited for a
// fetch in flight, or read-ahead had brought it.
func (c *Cache) block(ctx context.Context, id blockID, objSize, lo, hi int64) ([]byte, bool, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, false, ErrClosed
		}
		if e := c.entries[id]; e != nil {
			wasAhead := c.touchLocked(e, lo, hi)
			c.mu.Unlock()
			if part, ok := readAt(c.path(id), lo, hi, e.size); ok {
				c.hits.Add(1)
				return part, wasAhead, nil
			}
			// Evicted between the lookup and the read (or damaged): forget
			// it and fetch again.
			c.mu.Lock()
			if c.entries[id] == e {
				c.removeLocked(e)
			}
			c.mu.Unlock()
			continue
		}
		cl := c.inflight[id]
		if cl == nil {
			cl = &call{done: make(chan struct{}), claimed: true}
			c.inflight[id] = cl
			c.mu.Unlock()
			c.misses.Add(1)
			c.fetch(ctx, id, objSize, cl)
			if cl.err != nil {
				return nil, true, cl.err
			}
			c.mu.Lock()
			if e := c.entries[id]; e != nil {
				c.touchLocked(e, lo, hi)
			}
			c.mu.Unlock()
			return cl.data[lo:hi], true, nil
		}
		if cl.ahead && !cl.claimed {
			c.aheadHits.Add(1)
		}
		cl.claimed = true
		c.mu.Unlock()
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if cl.err != nil {
			if errors.Is(cl.err, context.Canceled) && ctx.Err() == nil {
				continue // someone else's fetch was cancelled; try ourselves
			}
			return nil, true, cl.err
		}
		c.mu.Lock()
		if e := c.entries[id]; e != nil {
			c.touchLocked(e, lo, hi)
		}
		c.mu.Unlock()
		return cl.data[lo:hi], true, nil
	}
}

// touchLocked records a read of [lo, hi) of e: bytes read before promote
// it to the protected segment, where scans do not reach. It reports
// whether read-ahead had fetched e for this reader.
func (c *Cache) touchLocked(e *entry, lo, hi int64) (wasAhead bool) {
	if e.ahead {
		c.aheadHits.Add(1)
		e.ahead, wasAhead = false, true
	}
	if g := c.ghosts[e.id]; g != nil {
		c.ghostQ.Remove(g.elem)
		delete(c.ghosts, e.id)
		e.read = g.read
	}
	c.firstBytes.Add(e.firstRead(lo, hi))
	again := e.reread(lo, hi)
	if again && e.seg == probation {
		c.moveLocked(e, protected)
		// The protected segment keeps what ScanBytes leaves; its least
		// recently used blocks go back to probation, not out.
		for c.size[protected] > c.cfg.MaxBytes-c.cfg.ScanBytes && c.lru[protected].Len() > 1 {
			old := c.lru[protected].Back().Value.(*entry)
			c.moveLocked(old, probation)
			c.lru[probation].MoveToBack(old.elem)
		}
		c.evictLocked()
		return wasAhead
	}
	c.lru[e.seg].MoveToFront(e.elem)
	return wasAhead
}

func (c *Cache) moveLocked(e *entry, seg int) {
	c.lru[e.seg].Remove(e.elem)
	c.size[e.seg] -= e.size
	e.seg = seg
	e.elem = c.lru[seg].PushFront(e)
	c.size[seg] += e.size
}

// readAt reads [lo, hi) of the block file at path, which should hold size
// bytes; ok is false if it is gone or not that size.
func readAt(path string, lo, hi, size int64) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return nil, false
	}
	buf := make([]byte, hi-lo)
	if _, err := f.ReadAt(buf, lo); err != nil {
		return nil, false
	}
	return buf, true
}

// fetch GETs one block, stores it and completes cl.
func (c *Cache) fetch(ctx context.Context, id blockID, objSize int64, cl *call) {
	B := c.cfg.BlockBytes
	start := id.index * B
	n := min(B, objSize-start)
	c.gets.Add(1)
	data, err := c.b.GetRange(ctx, id.key, start, n)
	c.getBytes.Add(int64(len(data)))
	c.mu.Lock()
	if c.ghosts[id] != nil {
		c.againBytes.Add(int64(len(data)))
	}
	c.mu.Unlock()
	stored := false
	if err == nil {
		// A full or broken disk costs caching, not the read.
		stored = c.writeBlock(id, data) == nil
	} else {
		err = fmt.Errorf("cache: get %s [%d, %d): %w", id.key, start, start+n, err)
	}
	cl.data, cl.err = data, err
	c.mu.Lock()
	delete(c.inflight, id)
	if stored {
		c.insertLocked(id, int64(len(data)), cl.ahead && !cl.claimed)
	}
	c.mu.Unlock()
	close(cl.done)
}

// writeBlock writes a fetched block's file.
func (c *Cache) writeBlock(id blockID, data []byte) error {
	p := c.path(id)
	tmp := p + ".tmp" + strconv.FormatInt(int64(len(data)), 10)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// insertLocked adds a block whose file is written, on probation.
func (c *Cache) insertLocked(id blockID, size int64, ahead bool) {
	if c.closed {
		os.Remove(c.path(id))
		return
	}
	if old := c.entries[id]; old != nil {
		c.lru[old.seg].Remove(old.elem)
		c.size[old.seg] -= old.size
	}
	e := &entry{id: id, size: size, seg: probation, ahead: ahead}
	e.elem = c.lru[probation].PushFront(e)
	c.entries[id] = e
	c.size[probation] += size
	c.evictLocked()
}

// evictLocked drops probation's least recently used blocks while it holds
// more than ScanBytes or the cache more than MaxBytes (protected blocks
// only once probation is empty).
func (c *Cache) evictLocked() {
	for c.lru[probation].Len() > 1 && (c.size[probation] > c.cfg.ScanBytes || c.size[probation]+c.size[protected] > c.cfg.MaxBytes) {
		e := c.lru[probation].Back().Value.(*entry)
		c.removeLocked(e)
		if len(e.read) > 0 && c.ghosts[e.id] == nil {
			c.ghosts[e.id] = &ghost{elem: c.ghostQ.PushBack(e.id), read: e.read}
			if int64(c.ghostQ.Len()) > c.cfg.MaxBytes/c.cfg.BlockBytes {
				delete(c.ghosts, c.ghostQ.Remove(c.ghostQ.Front()).(blockID))
			}
		}
	}
	for c.size[probation]+c.size[protected] > c.cfg.MaxBytes && c.lru[protected].Len() > 0 {
		c.removeLocked(c.lru[protected].Back().Value.(*entry))
	}
}

func (c *Cache) removeLocked(e *entry) {
	c.lru[e.seg].Remove(e.elem)
	delete(c.entries, e.id)
	c.size[e.seg] -= e.size
	if e.ahead {
		c.aheadWasted.Add(e.size)
	}
	os.Remove(c.path(e.id))
}

func (c *Cache) path(id blockID) string {
	h := sha256.Sum256([]byte(id.key))
	return filepath.Join(c.cfg.Dir, hex.EncodeToString(h[:12])+"-"+strconv.FormatInt(id.index, 10))
}

// Close stops read-ahead, waits for it and removes the cached blocks.
// Reads after Close fail with ErrClosed.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return removeBlocks(c.cfg.Dir)
}

// blockName matches the files the cache writes (see path and store), so
// that a misconfigured directory loses nothing else.
var blockName = regexp.MustCompile(`^[0-9a-f]{24}-[0-9]+(\.tmp[0-9]+)?$`)

func removeBlocks(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && blockName.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("cache: %w", err)
			}
		}
	}
	return nil
}
