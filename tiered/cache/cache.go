// Package cache serves byte ranges of objects through a bounded on-disk
// cache of fixed-size blocks, with read-ahead for sequential readers, so
// reading old data costs about one ranged GET per block however small the
// reads are.
//
// An object is cut into blocks aligned to BlockBytes from its start:
//
//	object  |<---- block 0 ---->|<---- block 1 ---->|<- block 2 ->|
//	        0                   B                  2B          size
//
// A read of [off, off+n) fetches the blocks it touches that are not cached
// (one GetRange each, the last block short), stores each as a file in Dir
// and copies out the bytes asked for. After a miss on block i the next
// ReadAhead blocks of the same object are fetched in the background: a
// consumer reading forward finds them cached. A small per-flush object is
// a single block, so one GET brings every partition's chunk of it.
//
// Objects are immutable (Eddy never rewrites a key with other bytes), so
// cached blocks never go stale; they leave the cache only by eviction,
// least recently used first, once the cache holds more than MaxBytes. The
// cache is rebuilt from nothing on Open: a wiped or lost directory costs
// GETs, never correctness.
//
// Metrics (GETs per MiB is the ratio of the first two):
//
//	eddy_remote_gets_total          GetRange calls made for readers (read-ahead included)
//	eddy_remote_read_bytes_total    bytes returned to readers
//	eddy_remote_gets_per_mib        the two above divided, since start
//	eddy_remote_cache_hits_total    blocks served from disk
//	eddy_remote_cache_misses_total  blocks fetched while a reader waited
//	eddy_remote_cache_bytes         bytes on disk
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
	// BlockBytes is the size of one cached block and so of one GET.
	BlockBytes int64
	// ReadAhead is how many blocks after a missed one are fetched in the
	// background (0: none).
	ReadAhead int
}

// DefaultConfig returns the defaults the flags start from. Dir has none:
// the broker puts it under its data directory.
func DefaultConfig() Config {
	return Config{MaxBytes: 1 << 30, BlockBytes: 4 << 20, ReadAhead: 2}
}

// RegisterFlags registers the cache's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Dir, "remote-cache-dir", d.Dir, "on-disk cache of object-store reads (default: <data-dir>/cache)")
	fs.Int64Var(&c.MaxBytes, "remote-cache-bytes", d.MaxBytes, "size bound of the on-disk read cache")
	fs.Int64Var(&c.BlockBytes, "remote-cache-block-bytes", d.BlockBytes, "block size of the read cache: the size of one ranged GET")
	fs.IntVar(&c.ReadAhead, "remote-read-ahead", d.ReadAhead, "blocks fetched ahead of a sequential reader")
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
	}
	return nil
}

// ErrClosed is returned by reads after Close.
var ErrClosed = errors.New("cache: closed")

type blockID struct {
	key   string
	index int64
}

type entry struct {
	id   blockID
	size int64
	elem *list.Element
}

type call struct {
	done chan struct{}
	data []byte
	err  error
}

// Cache is an on-disk block cache in front of a bucket.
type Cache struct {
	cfg Config
	b   bucket.Bucket

	ctx    context.Context // ends on Close; read-ahead runs under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{} // bounds concurrent read-ahead GETs

	mu       sync.Mutex
	entries  map[blockID]*entry
	lru      *list.List // front: most recently used
	size     int64
	inflight map[blockID]*call
	closed   bool

	gets, readBytes, hits, misses atomic.Int64
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
		sem:      make(chan struct{}, 4),
		entries:  map[blockID]*entry{},
		lru:      list.New(),
		inflight: map[blockID]*call{},
	}
	if reg != nil {
		counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(v.Load()) })
		}
		reg.MustRegister(
			counter("eddy_remote_gets_total", "Ranged GETs made to read old data (read-ahead included).", &c.gets),
			counter("eddy_remote_read_bytes_total", "Bytes of old data returned to readers.", &c.readBytes),
			counter("eddy_remote_cache_hits_total", "Blocks served from the on-disk read cache.", &c.hits),
			counter("eddy_remote_cache_misses_total", "Blocks fetched from the object store while a reader waited.", &c.misses),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eddy_remote_gets_per_mib", Help: "Ranged GETs per MiB of old data read, since start."},
				func() float64 { return c.Stats().GetsPerMiB() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eddy_remote_cache_bytes", Help: "Bytes held by the on-disk read cache."},
				func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(c.size) }))
	}
	return c, nil
}

// Stats are counters since Open.
type Stats struct {
	Gets, ReadBytes, Hits, Misses, CachedBytes int64
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
	size := c.size
	c.mu.Unlock()
	return Stats{
		Gets: c.gets.Load(), ReadBytes: c.readBytes.Load(),
		Hits: c.hits.Load(), Misses: c.misses.Load(), CachedBytes: size,
	}
}

// ReadRange returns n bytes at off of the object key whose size is
// objSize. With objSize < 0 (unknown) it bypasses the cache and reads the
// exact range.
func (c *Cache) ReadRange(ctx context.Context, key string, objSize, off, n int64) ([]byte, error) {
	if objSize < 0 {
		c.gets.Add(1)
		data, err := c.b.GetRange(ctx, key, off, n)
		c.readBytes.Add(int64(len(data)))
		return data, err
	}
	if off < 0 || n < 0 || off+n > objSize {
		return nil, fmt.Errorf("cache: %w: [%d, %d) of %d-byte %s", bucket.ErrRange, off, off+n, objSize, key)
	}
	out := make([]byte, 0, n)
	B := c.cfg.BlockBytes
	for i := off / B; i*B < off+n; i++ {
		lo, hi := max(off, i*B)-i*B, min(off+n, (i+1)*B)-i*B
		part, missed, err := c.block(ctx, blockID{key, i}, objSize, lo, hi)
		if err != nil {
			return nil, err
		}
		if missed {
			c.readAhead(key, objSize, i)
		}
		out = append(out, part...)
	}
	c.readBytes.Add(n)
	return out, nil
}

// Prefetch fetches the blocks holding [off, off+n) of key in the
// background, for a reader expected to ask for them soon.
func (c *Cache) Prefetch(key string, objSize, off, n int64) {
	if objSize < 0 || off < 0 || n <= 0 || off+n > objSize {
		return
	}
	B := c.cfg.BlockBytes
	for i := off / B; i*B < off+n; i++ {
		c.fetchAsync(blockID{key, i}, objSize)
	}
}

func (c *Cache) readAhead(key string, objSize, i int64) {
	for j := i + 1; j <= i+int64(c.cfg.ReadAhead) && j*c.cfg.BlockBytes < objSize; j++ {
		c.fetchAsync(blockID{key, j}, objSize)
	}
}

func (c *Cache) fetchAsync(id blockID, objSize int64) {
	c.mu.Lock()
	if c.closed || c.entries[id] != nil || c.inflight[id] != nil {
		c.mu.Unlock()
		return
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[id] = cl
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
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
// the fetched block; missed says it had to be fetched (or waited for a
// fetch in flight).
func (c *Cache) block(ctx context.Context, id blockID, objSize, lo, hi int64) ([]byte, bool, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, false, ErrClosed
		}
		if e := c.entries[id]; e != nil {
			c.lru.MoveToFront(e.elem)
			c.mu.Unlock()
			if part, ok := readAt(c.path(id), lo, hi, e.size); ok {
				c.hits.Add(1)
				return part, false, nil
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
			cl = &call{done: make(chan struct{})}
			c.inflight[id] = cl
			c.mu.Unlock()
			c.misses.Add(1)
			c.fetch(ctx, id, objSize, cl)
			if cl.err != nil {
				return nil, true, cl.err
			}
			return cl.data[lo:hi], true, nil
		}
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
		return cl.data[lo:hi], true, nil
	}
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
	if err == nil {
		err = c.store(id, data)
		if err != nil {
			err = nil // a full or broken disk costs caching, not the read
		}
	} else {
		err = fmt.Errorf("cache: get %s [%d, %d): %w", id.key, start, start+n, err)
	}
	cl.data, cl.err = data, err
	c.mu.Lock()
	delete(c.inflight, id)
	c.mu.Unlock()
	close(cl.done)
}

func (c *Cache) store(id blockID, data []byte) error {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if old := c.entries[id]; old != nil {
		c.lru.Remove(old.elem)
		c.size -= old.size
	}
	e := &entry{id: id, size: int64(len(data))}
	e.elem = c.lru.PushFront(e)
	c.entries[id] = e
	c.size += e.size
	for c.size > c.cfg.MaxBytes && c.lru.Len() > 1 {
		c.removeLocked(c.lru.Back().Value.(*entry))
	}
	return nil
}

func (c *Cache) removeLocked(e *entry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.id)
	c.size -= e.size
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
