package compact

import (
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
)

// When a compacted partition is due, and which rows a pass may touch.
func TestDue(t *testing.T) {
	const now = 1_000_000
	// Four rows of 100 bytes: [0,10) [10,20) clean, [20,30) [30,40) dirty.
	rows := []store.Segment{
		{BaseOffset: 0, EndOffset: 10, Length: 100, MaxTimestamp: now - 500},
		{BaseOffset: 10, EndOffset: 20, Length: 100, MaxTimestamp: now - 400},
		{BaseOffset: 20, EndOffset: 30, Length: 100, MaxTimestamp: now - 300},
		{BaseOffset: 30, EndOffset: 40, Length: 100, MaxTimestamp: now - 10},
	}
	for _, tc := range []struct {
		name    string
		k       store.KeyCompaction
		rows    []store.Segment
		wantDue bool
	}{
		{"half dirty is not over the default 0.5", store.KeyCompaction{CleanOffset: 20, DeleteHorizon: -1, MarkerTimestamp: -1}, rows, false},
		{"over the ratio", store.KeyCompaction{Configs: map[string]string{"min.cleanable.dirty.ratio": "0.4"}, CleanOffset: 20, DeleteHorizon: -1, MarkerTimestamp: -1}, rows, true},
		{"never compacted", store.KeyCompaction{DeleteHorizon: -1, MarkerTimestamp: -1}, rows, true},
		{"nothing dirty", store.KeyCompaction{Configs: map[string]string{"min.cleanable.dirty.ratio": "0"}, CleanOffset: 40, DeleteHorizon: -1, MarkerTimestamp: -1}, rows, false},
		{"max lag passed", store.KeyCompaction{Configs: map[string]string{"max.compaction.lag.ms": "250"}, CleanOffset: 20, DeleteHorizon: -1, MarkerTimestamp: -1}, rows, true},
		{"max lag not passed", store.KeyCompaction{Configs: map[string]string{"max.compaction.lag.ms": "350"}, CleanOffset: 20, DeleteHorizon: -1, MarkerTimestamp: -1}, rows, false},
		{"delete horizon come", store.KeyCompaction{CleanOffset: 40, DeleteHorizon: now, MarkerTimestamp: -1}, rows, true},
		{"delete horizon to come", store.KeyCompaction{CleanOffset: 40, DeleteHorizon: now + 1, MarkerTimestamp: -1}, rows, false},
		{"marker old enough", store.KeyCompaction{Configs: map[string]string{"delete.retention.ms": "100"}, CleanOffset: 40, DeleteHorizon: -1, MarkerTimestamp: now - 101}, rows, true},
		{"marker too young", store.KeyCompaction{Configs: map[string]string{"delete.retention.ms": "100"}, CleanOffset: 40, DeleteHorizon: -1, MarkerTimestamp: now - 100}, rows, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := due(measure(tc.k, tc.rows), now); got != tc.wantDue {
				t.Fatalf("due = %v, want %v", got, tc.wantDue)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		lso     int64
		configs map[string]string
		want    int
	}{
		{"all", 40, nil, 4},
		{"below the last stable offset", 25, nil, 2},
		{"min lag keeps the newest row", 40, map[string]string{"min.compaction.lag.ms": "100"}, 3},
		{"min lag keeps all", 40, map[string]string{"min.compaction.lag.ms": "1000"}, 0},
	} {
		t.Run("cleanable: "+tc.name, func(t *testing.T) {
			if got := len(cleanable(rows, tc.lso, now, tc.configs)); got != tc.want {
				t.Fatalf("%d rows cleanable, want %d", got, tc.want)
			}
		})
	}
}
