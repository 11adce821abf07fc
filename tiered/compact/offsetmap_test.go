package compact

import (
	"fmt"
	"testing"
)

// The offset map keeps every key's latest offset until its largest table
// is 3/4 full, then refuses new keys but still updates the ones it has.
func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(2000*entryBytes, 1<<20) // its largest table at once
	capacity := len(m.slots) * 3 / 4
	for i := range capacity {
		if !m.put(fmt.Appendf(nil, "k%d", i), int64(i)) {
			t.Fatalf("refused key %d of %d", i, capacity)
		}
	}
	if m.put([]byte("one more"), 1) {
		t.Fatal("a full map took a new key")
	}
	if !m.put([]byte("k7"), 1000) || m.latest([]byte("k7")) != 1000 {
		t.Fatal("a full map must still update a key it has")
	}
	if got := m.latest([]byte("k8")); got != 8 {
		t.Fatalf("latest(k8) = %d, want 8", got)
	}
	if got := m.latest([]byte("absent")); got != -1 {
		t.Fatalf("latest(absent) = %d, want -1", got)
	}
	m.reset()
	if m.len() != 0 || m.latest([]byte("k8")) != -1 {
		t.Fatal("reset left keys")
	}
}

// A map started for fewer keys than come grows, keeping its keys, up to
// its memory: compressed batches hold more keys than their bytes suggest.
func TestOffsetMapGrows(t *testing.T) {
	m := newOffsetMap(1<<20, 1000)
	start, most := len(m.slots), (1<<20)/entryBytes
	n := 0
	for ; m.put(fmt.Appendf(nil, "k%d", n), int64(n)); n++ {
	}
	if len(m.slots) != most || n != most*3/4 || start >= most {
		t.Fatalf("took %d keys in %d slots (started at %d), want %d in %d", n, len(m.slots), start, most*3/4, most)
	}
	for i := range n {
		if got := m.latest(fmt.Appendf(nil, "k%d", i)); got != int64(i) {
			t.Fatalf("latest(k%d) = %d after growing", i, got)
		}
	}
	if m.peak <= m.bytes() || m.peak >= 2*m.bytes() {
		t.Fatalf("peak %d for a table of %d", m.peak, m.bytes())
	}
}
