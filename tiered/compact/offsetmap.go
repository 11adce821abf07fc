package compact

import "hash/maphash"

// offsetMap maps a key's 128-bit hash to the offset of its latest record,
// as Kafka's SkimpyOffsetMap does: a key costs entryBytes whatever its
// length, and the map never holds more than maxSlots entries' worth of
// memory. Two keys with the same 128-bit hash would be taken for one
// (the older record of the other dropped); with the 10^7 keys of a large
// partition that happens with a probability of about 10^-25.
//
// The table starts small and doubles (linear probing, at most 3/4 full)
// up to maxSlots; put refuses a new key once that table is full, and the
// pass compacts what the map covers so far. Not safe for concurrent use.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapEntry
	n            int
	maxSlots     int
}

type mapEntry struct {
	h1, h2 uint64 // h2 is never 0 in a used slot
	offset int64
}

// entryBytes is the memory one slot takes.
const entryBytes = 24

const minSlots = 1 << 10

// newOffsetMap returns a map whose table, while growing (the old and the
// new table side by side), never takes more than memory bytes.
func newOffsetMap(memory int64) *offsetMap {
	max := minSlots
	for int64(max)*2*entryBytes*3/2 <= memory {
		max *= 2
	}
	return &offsetMap{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), maxSlots: max}
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key) | 1
}

// put records offset as key's latest; false if key is new and the map is
// full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	if m.slots == nil {
		m.slots = make([]mapEntry, minSlots)
	}
	mask := uint64(len(m.slots) - 1)
	for i := h1 & mask; ; i = (i + 1) & mask {
		e := &m.slots[i]
		if e.h2 == 0 {
			if m.n+1 > len(m.slots)*3/4 {
				if len(m.slots) >= m.maxSlots {
					return false
				}
				m.grow()
				return m.put(key, offset)
			}
			*e = mapEntry{h1, h2, offset}
			m.n++
			return true
		}
		if e.h1 == h1 && e.h2 == h2 {
			e.offset = offset
			return true
		}
	}
}

// latest returns the offset put for key, or -1.
func (m *offsetMap) latest(key []byte) int64 {
	if m.n == 0 {
		return -1
	}
	h1, h2 := m.hash(key)
	mask := uint64(len(m.slots) - 1)
	for i := h1 & mask; ; i = (i + 1) & mask {
		e := &m.slots[i]
		if e.h2 == 0 {
			return -1
		}
		if e.h1 == h1 && e.h2 == h2 {
			return e.offset
		}
	}
}

func (m *offsetMap) grow() {
	old := m.slots
	m.slots = make([]mapEntry, 2*len(old))
	mask := uint64(len(m.slots) - 1)
	for _, e := range old {
		if e.h2 == 0 {
			continue
		}
		i := e.h1 & mask
		for m.slots[i].h2 != 0 {
			i = (i + 1) & mask
		}
		m.slots[i] = e
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
