package compact

import (
	"fmt"
	"testing"
)

// The offset map keeps every key's latest offset until it is 3/4 full,
// then refuses new keys but still updates the ones it has.
func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(1<<20, 1000)
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
