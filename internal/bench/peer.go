package bench

import (
	"github.com/twmb/franz-go/pkg/kfake"
)

// startPeer starts the reference peer: franz-go's in-memory Kafka, with
// as many brokers as Eddy has, in this process on free loopback ports.
// Its figures share the machine, the client and the moment with Eddy's;
// it keeps everything in memory and never touches a disk, a bucket or a
// database, so it is the ceiling of a Kafka-protocol server here rather
// than a like-for-like competitor.
func startPeer(brokers int) (*kfake.Cluster, error) {
	return kfake.NewCluster(kfake.NumBrokers(max(1, brokers)), kfake.DefaultNumPartitions(1))
}
