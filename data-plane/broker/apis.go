package broker

import (
	"errors"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

type api struct {
	min, max int16
	handle   func(s *Server, c *conn, req kmsg.Request) (kmsg.Response, error)
}

// h adapts a typed handler. A handler returns nil to send no response
// (produce with acks=0).
func h[R kmsg.Request](f func(*Server, *conn, R) kmsg.Response) func(*Server, *conn, kmsg.Request) (kmsg.Response, error) {
	return func(s *Server, c *conn, req kmsg.Request) (kmsg.Response, error) {
		return f(s, c, req.(R)), nil
	}
}

// apis is the broker's API table: what ApiVersions advertises and how each
// request is dispatched. Every API listed has one handler file,
// <key>_<api>.go, whose header states the same version range
// (TestAPITableMatchesFiles), and one row in docs/kafka-compatibility.md
// (TestCompatibilityDocAPIs).
var apis map[int16]api

func init() {
	apis = map[int16]api{
		0:  {3, 12, h(handleProduce)},
		1:  {4, 16, h(handleFetch)},
		2:  {1, 8, h(handleListOffsets)},
		3:  {0, 12, h(handleMetadata)},
		8:  {0, 8, h(handleOffsetCommit)},
		9:  {0, 8, h(handleOffsetFetch)},
		10: {0, 4, h(handleFindCoordinator)},
		11: {0, 9, h(handleJoinGroup)},
		12: {0, 4, h(handleHeartbeat)},
		13: {0, 5, h(handleLeaveGroup)},
		14: {0, 5, h(handleSyncGroup)},
		15: {0, 5, h(handleDescribeGroups)},
		16: {0, 4, h(handleListGroups)},
		17: {0, 1, h(handleSASLHandshake)},
		18: {0, 3, h(handleAPIVersions)},
		19: {0, 7, h(handleCreateTopics)},
		20: {0, 6, h(handleDeleteTopics)},
		21: {0, 2, h(handleDeleteRecords)},
		22: {0, 5, h(handleInitProducerID)},
		23: {2, 4, h(handleOffsetForLeaderEpoch)},
		24: {0, 5, h(handleAddPartitionsToTxn)},
		25: {0, 4, h(handleAddOffsetsToTxn)},
		26: {0, 5, h(handleEndTxn)},
		28: {0, 6, h(handleTxnOffsetCommit)},
		29: {0, 3, h(handleDescribeACLs)},
		30: {0, 3, h(handleCreateACLs)},
		31: {0, 3, h(handleDeleteACLs)},
		32: {0, 4, h(handleDescribeConfigs)},
		36: {0, 2, h(handleSASLAuthenticate)},
		33: {0, 2, h(handleAlterConfigs)},
		37: {0, 3, h(handleCreatePartitions)},
		42: {0, 2, h(handleDeleteGroups)},
		44: {0, 1, h(handleIncrementalAlterConfigs)},
		47: {0, 0, h(handleOffsetDelete)},
		48: {0, 1, h(handleDescribeClientQuotas)},
		49: {0, 1, h(handleAlterClientQuotas)},
		60: {0, 1, h(handleDescribeCluster)},
		61: {0, 0, h(handleDescribeProducers)},
		65: {0, 0, h(handleDescribeTransactions)},
		66: {0, 2, h(handleListTransactions)},
		68: {0, 1, h(handleConsumerGroupHeartbeat)},
		69: {0, 1, h(handleConsumerGroupDescribe)},
		76: {0, 1, h(handleShareGroupHeartbeat)},
		77: {0, 1, h(handleShareGroupDescribe)},
		78: {0, 2, h(handleShareFetch)},
		79: {0, 2, h(handleShareAcknowledge)},
		90: {0, 1, h(handleDescribeShareGroupOffsets)},
		91: {0, 0, h(handleAlterShareGroupOffsets)},
		92: {0, 0, h(handleDeleteShareGroupOffsets)},
	}
}

// errCode maps internal errors to Kafka error codes; the second result is a
// message safe to show the client.
func errCode(err error) (int16, string) {
	if err == nil {
		return 0, ""
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code, err.Error()
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, store.ErrFenced):
		return kerr.NotLeaderForPartition.Code, "this broker does not lead the partition"
	case errors.Is(err, leader.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code, err.Error()
	case errors.Is(err, leader.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code, err.Error()
	case errors.Is(err, leader.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code, err.Error()
	case errors.Is(err, leader.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code, err.Error()
	case errors.Is(err, leader.ErrStorage):
		return kerr.KafkaStorageError.Code, "local storage failed"
	case errors.Is(err, batch.ErrTooLarge):
		return kerr.MessageTooLarge.Code, err.Error()
	case errors.Is(err, batch.ErrCorrupt):
		return kerr.CorruptMessage.Code, err.Error()
	case errors.Is(err, batch.ErrMagic):
		return kerr.UnsupportedForMessageFormat.Code, err.Error()
	case errors.Is(err, batch.ErrInvalid):
		return kerr.InvalidRecord.Code, err.Error()
	case errors.Is(err, topicconfig.ErrTimestamp):
		return kerr.InvalidTimestamp.Code, err.Error()
	case errors.Is(err, topicconfig.ErrInvalid), errors.Is(err, clusterconfig.ErrInvalid):
		return kerr.InvalidConfig.Code, err.Error()
	case errors.Is(err, clusterconfig.ErrReadOnly):
		return kerr.InvalidRequest.Code, err.Error()
	case errors.Is(err, store.ErrProducerFenced):
		return kerr.ProducerFenced.Code, err.Error()
	case errors.Is(err, store.ErrProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code, err.Error()
	case errors.Is(err, store.ErrTxnCompleting):
		return kerr.ConcurrentTransactions.Code, err.Error()
	case errors.Is(err, store.ErrTxnState):
		return kerr.InvalidTxnState.Code, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return kerr.UnknownTopicOrPartition.Code, "unknown topic or partition"
	case errors.Is(err, store.ErrExists):
		return kerr.TopicAlreadyExists.Code, "topic already exists"
	case errors.Is(err, store.ErrLimit):
		return kerr.PolicyViolation.Code, err.Error()
	case errors.Is(err, store.ErrInvalid):
		return kerr.InvalidRequest.Code, err.Error()
	default:
		// Postgres or object-store trouble: retriable for the client, and
		// the details stay in our logs.
		return kerr.UnknownServerError.Code, "internal error; see broker logs"
	}
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
