package object_test

import (
	"context"
	"fmt"
	"os"

	"github.com/eddy-streams/eddy/tiered/fsbucket"
	"github.com/eddy-streams/eddy/tiered/object"
)

// A flush builds one object from several partitions' batches; a reader that
// knows only the key and size recovers the index with two ranged reads.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "object-example")
	defer os.RemoveAll(dir)
	b, _ := fsbucket.Open(dir)

	var ob object.Builder
	ob.Add(1, 0, 3, 1700000000000, []byte("batches of partition 1"))
	ob.Add(2, 40, 41, 1700000000500, []byte("partition 2"))
	obj, _ := ob.Finish()
	if err := b.Put(ctx, "objects/0001", obj); err != nil {
		panic(err)
	}

	size := int64(len(obj)) // as recorded in Postgres, or from List
	foot, _ := b.GetRange(ctx, "objects/0001", size-object.FooterSize, object.FooterSize)
	pos, n, _ := object.ParseFooter(foot)
	tail, _ := b.GetRange(ctx, "objects/0001", pos, int64(n)+object.FooterSize)
	chunks, err := object.ReadIndex(tail)
	if err != nil {
		panic(err)
	}
	for _, c := range chunks {
		data, _ := b.GetRange(ctx, "objects/0001", c.Position, c.Length)
		fmt.Printf("partition %d offsets [%d, %d): %q\n", c.PartitionID, c.BaseOffset, c.EndOffset, data)
	}
	// Output:
	// partition 1 offsets [0, 3): "batches of partition 1"
	// partition 2 offsets [40, 41): "partition 2"
}
