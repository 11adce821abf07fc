package compact

import (
	"hash/maphash"
	"math/bits"
)

// offsetMap maps a key's 128-bit hash to the offset of its latest record,
// as Kafka's SkimpyOffsetMap does: a key costs entryBytes whatever its
// length, in one table allocated once. Two keys with the same 128-bit
// hash would be taken for one (the older record of the other dropped);
// with the 10^7 keys of a large partition that happens with a probability
// of about 10^-25.
//
// The table is probed linearly and filled to 3/4 at most. It starts at
// the size the caller expects and doubles when it fills, up to its memory
// (as Kafka's dedupe buffer is, at most): an estimate from the dirty bytes
// cannot know how many keys compressed batches hold. put refuses a new
// key once the largest table is 3/4 full, and the pass compacts what the
// map covers so far. Not safe for concurrent use.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapEntry
	n            int
	maxSlots     int
	// peak is the most the tables took at once: while one grows, the old
	// and the new.
	peak int64
}

type mapEntry struct {
	h1, h2 uint64 // h2 is never 0 in a used slot
	offset int64
}

// entryBytes is the memory one slot takes.
const entryBytes = 24

// newOffsetMap returns a map of at most memory bytes, starting with room
// for about keys keys.
func newOffsetMap(memory int64, keys int64) *offsetMap {
	most := max(memory/entryBytes, 4)
	n := min(most, max(keys, 1024)*4/3+1)
	m := &offsetMap{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), slots: make([]mapEntry, n), maxSlots: int(most)}
	m.peak = m.bytes()
	return m
}

// grow doubles the table, up to maxSlots; false if it is that large
// already.
func (m *offsetMap) grow() bool {
	if len(m.slots) >= m.maxSlots {
		return false
	}
	old := m.slots
	m.slots = make([]mapEntry, min(m.maxSlots, 2*len(old)))
	m.peak = max(m.peak, int64(len(old)+len(m.slots))*entryBytes)
	for _, e := range old {
		if e.h2 != 0 {
			*m.slot(e.h1, e.h2) = e
		}
	}
	return true
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key) | 1
}

// home is h1's slot: h1 scaled to the table (Lemire's multiply-shift).
func (m *offsetMap) home(h1 uint64) int {
	hi, _ := bits.Mul64(h1, uint64(len(m.slots)))
	return int(hi)
}

// put records offset as key's latest; false if key is new and the map is
// full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	return m.putHash(h1, h2, offset)
}

// entry returns key's entry for offset, to put later (putHash).
func (m *offsetMap) entry(key []byte, offset int64) mapEntry {
	h1, h2 := m.hash(key)
	return mapEntry{h1: h1, h2: h2, offset: offset}
}

// putHash is put of a key by its hashes.
func (m *offsetMap) putHash(h1, h2 uint64, offset int64) bool {
	e := m.slot(h1, h2)
	if e.h2 == 0 {
		if m.n >= len(m.slots)*3/4 {
			if !m.grow() {
				return false
			}
			e = m.slot(h1, h2)
		}
		e.h1, e.h2 = h1, h2
		m.n++
	}
	e.offset = offset
	return true
}

// latest returns the offset put for key, or -1.
func (m *offsetMap) latest(key []byte) int64 {
	if m.n == 0 {
		return -1
	}
	if e := m.slot(m.hash(key)); e.h2 != 0 {
		return e.offset
	}
	return -1
}

// slot returns the slot of (h1, h2), or the empty one where it would go
// (there is always one: the table is never more than 3/4 full).
func (m *offsetMap) slot(h1, h2 uint64) *mapEntry {
	for i := m.home(h1); ; i++ {
		if i == len(m.slots) {
			i = 0
		}
		if e := &m.slots[i]; e.h2 == 0 || e.h1 == h1 && e.h2 == h2 {
			return e
		}
	}
}

// reset empties the map, keeping its table for the next round.
func (m *offsetMap) reset() {
	clear(m.slots)
	m.n = 0
}

// bytes is the memory the table holds.
func (m *offsetMap) bytes() int64 { return int64(len(m.slots)) * entryBytes }

// len is the number of keys.
func (m *offsetMap) len() int { return m.n }
