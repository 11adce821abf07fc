package broker

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Internal topics: __consumer_offsets and __transaction_state, as clients
// and tools expect to find and skip them (kadm and `kafka-topics --list`
// mark them internal, regex subscriptions leave them out). Eddy keeps
// offsets, groups and transactions in Postgres, so these topics exist
// only in what the broker answers:
//
//   - Metadata lists them with IsInternal, to those who may DESCRIBE them,
//     with one partition per coordinator slot, led by the slot's broker
//     (partition i is slot i), and a topic id derived from the cluster
//     and the name;
//   - they hold no records: Fetch answers them empty (high watermark 0,
//     OFFSET_OUT_OF_RANGE past it), ListOffsets 0, DescribeConfigs
//     cleanup.policy=compact;
//   - they are read-only: Produce answers INVALID_TOPIC_EXCEPTION (as
//     Kafka does for clients appending to internal topics), DeleteTopics
//     INVALID_REQUEST, CreateTopics TOPIC_ALREADY_EXISTS (the store refuses
//     the names), and automatic creation skips them; everything else that
//     names a topic answers them as unknown.

// internalConfigs are the explicit configs internal topics describe with.
var internalConfigs = map[string]string{"cleanup.policy": "compact"}

// internalTopicID is an internal topic's id in one cluster: stable, and
// different in every cluster, as a real cluster's would be.
func internalTopicID(cluster, name string) [16]byte {
	sum := sha256.Sum256([]byte(cluster + "\x00" + name))
	var id [16]byte
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x40 // UUIDv4-shaped, as the store's ids
	id[8] = id[8]&0x3f | 0x80
	return id
}

// internalByID returns the name of the internal topic with id in
// cluster, or "".
func internalByID(cluster string, id [16]byte) string {
	for _, n := range topicconfig.InternalTopics() {
		if internalTopicID(cluster, n) == id {
			return n
		}
	}
	return ""
}

// internalPartitions is how many partitions internal topics have: one per
// coordinator slot.
func (v *view) internalPartitions() int32 { return int32(len(v.slots)) }

// internalMetadataTopic describes internal topic name for Metadata.
func (v *view) internalMetadataTopic(cluster, name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic, mt.TopicID, mt.IsInternal = &name, internalTopicID(cluster, name), true
	for i, sl := range v.slots {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.LeaderEpoch, mp.Leader = int32(i), sl.LeaderEpoch, -1
		if _, ok := v.byBroker[sl.LeaderID]; ok {
			mp.Leader = sl.LeaderID
			mp.Replicas, mp.ISR = []int32{mp.Leader}, []int32{mp.Leader}
		} else {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// internalFetch answers a fetch of partition p of an internal topic: empty
// at offset 0.
func (v *view) internalFetch(sp *kmsg.FetchResponseTopicPartition, offset int64) {
	switch {
	case sp.Partition < 0 || sp.Partition >= v.internalPartitions():
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
	case offset != 0:
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 0, 0, 0
	default:
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 0, 0, 0
	}
}

// sortMetadataTopics orders a listing by name, as Kafka's.
func sortMetadataTopics(ts []kmsg.MetadataResponseTopic) {
	slices.SortFunc(ts, func(a, b kmsg.MetadataResponseTopic) int { return strings.Compare(*a.Topic, *b.Topic) })
}
