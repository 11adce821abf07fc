package retention

import "testing"

func TestLimits(t *testing.T) {
	const now = 1_800_000_000_000 // Unix ms, as from a real clock
	for _, tc := range []struct {
		name          string
		configs       map[string]string
		cutoff, bytes int64
		ok            bool
	}{
		{"defaults: seven days, no size limit", nil, now - 604800000, -1, true},
		{"time and size", map[string]string{"retention.ms": "1000", "retention.bytes": "5000"}, now - 1000, 5000, true},
		{"forever", map[string]string{"retention.ms": "-1"}, -1, -1, false},
		{"size only", map[string]string{"retention.ms": "-1", "retention.bytes": "1"}, -1, 1, true},
		{"compact only is never deleted", map[string]string{"cleanup.policy": "compact", "retention.ms": "1"}, -1, -1, false},
		{"compact and delete", map[string]string{"cleanup.policy": "compact, delete", "retention.ms": "1"}, now - 1, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cutoff, bytes, ok := limits(tc.configs, now)
			if cutoff != tc.cutoff || bytes != tc.bytes || ok != tc.ok {
				t.Fatalf("limits = %d, %d, %v; want %d, %d, %v", cutoff, bytes, ok, tc.cutoff, tc.bytes, tc.ok)
			}
		})
	}
}
