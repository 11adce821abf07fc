package bench

import (
	"context"
	"fmt"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// Index is the size of Eddy's segment index (Postgres) when a produce
// phase ends, over the whole database: what goal 8 of issue 22 bounds
// (rows grow with the data kept, not with the flushes).
type Index struct {
	Rows        int64   `json:"rows"`
	Compacted   int64   `json:"compacted_rows"` // in compaction's segment objects; the others are per-flush pieces
	RowBytes    int64   `json:"row_bytes"`      // as stored, without the table's indexes
	DataBytes   int64   `json:"data_bytes"`     // the record batches the rows reference
	Partitions  int64   `json:"partitions"`     // with rows
	RowsPerGiB  float64 `json:"rows_per_gib_kept"`
	BytesPerGiB float64 `json:"row_bytes_per_gib_kept"`
	RowsPerPart float64 `json:"rows_per_partition"`
}

// indexAfter measures the index of tg's database (nil without one).
func indexAfter(ctx context.Context, tg target) (*Index, error) {
	if tg.dbURL == "" {
		return nil, nil
	}
	st, err := store.Open(ctx, tg.dbURL, 1)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s, err := st.IndexSize(ctx, compact.SegmentPrefix)
	if err != nil {
		return nil, err
	}
	ix := &Index{Rows: s.Rows, Compacted: s.Compacted, RowBytes: s.RowBytes, DataBytes: s.DataBytes, Partitions: s.Partitions}
	if gib := float64(s.DataBytes) / GiB; gib > 0 {
		ix.RowsPerGiB, ix.BytesPerGiB = float64(s.Rows)/gib, float64(s.RowBytes)/gib
	}
	if s.Partitions > 0 {
		ix.RowsPerPart = float64(s.Rows) / float64(s.Partitions)
	}
	return ix, nil
}

// indexTable is the index after each workload's produce phase; nil when
// none was measured.
func (r *Report) indexTable() *table {
	t := &table{title: "Eddy's segment index in Postgres when each produce phase ended (the whole database: earlier workloads' topics are deleted, their rows go with them)",
		header: []string{"workload", "rows", "of them compacted", "partitions with rows", "rows per partition", "MiB kept", "rows per GiB kept", "row bytes per GiB kept"}}
	for _, c := range r.Runs {
		ix := c.Eddy.Index
		if ix == nil {
			continue
		}
		t.add(c.Workload.Name, fmt.Sprint(ix.Rows), fmt.Sprint(ix.Compacted), fmt.Sprint(ix.Partitions), f1(ix.RowsPerPart), f1(float64(ix.DataBytes)/(1<<20)),
			fmt.Sprintf("%.0f", ix.RowsPerGiB), fmt.Sprintf("%.0f", ix.BytesPerGiB))
	}
	if len(t.rows) == 0 {
		return nil
	}
	return t
}
