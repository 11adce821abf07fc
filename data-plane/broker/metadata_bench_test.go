package broker

import (
	"fmt"
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkMetadataAllTopics builds and encodes a Metadata response for
// a cluster of 100 topics of 100 partitions (10,000), as a listing of all
// topics does.
func BenchmarkMetadataAllTopics(b *testing.B) {
	md := &store.Metadata{Brokers: []store.Broker{{ID: 1}, {ID: 2}, {ID: 3}}}
	id := int64(0)
	for i := range 100 {
		t := store.Topic{ClusterID: "vc", Name: fmt.Sprintf("t%03d", i)}
		for p := range 100 {
			id++
			t.Partitions = append(t.Partitions, store.Partition{ID: id, Partition: int32(p), LeaderID: int32(1 + id%3), MovingTo: -1})
		}
		md.Topics = append(md.Topics, t)
	}
	v := newView(md)
	s := &Server{}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 12
		for i := range md.Topics {
			resp.Topics = append(resp.Topics, s.metadataTopic(v, &md.Topics[i]))
		}
		buf = resp.AppendTo(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
