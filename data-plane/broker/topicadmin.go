package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

// Topic creation shared by several APIs: Produce and Metadata create
// missing topics (autoCreate) and, with CreateTopics, apply Kafka's topic
// name rules.

// autoCreate creates a missing topic when the connection's cluster allows
// it and so does authorization (CREATE on the cluster or the topic);
// errors are logged, the caller reports the topic as unknown anyway.
func (s *Server) autoCreate(c *conn, name string) bool {
	v := s.view.Load()
	cl, ok := v.clusters[c.cluster]
	if !ok || !cl.AutoCreateTopics || validTopicName(name) != nil || topicconfig.Internal(name) || !c.mayCreateTopic(name) {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if _, _, err := s.store.CreateTopic(ctx, store.AnyOrg, c.cluster, name, cl.DefaultPartitions, nil); err != nil && !isExists(err) {
		s.log.Warn("automatic topic creation failed", "topic", name, "err", err)
		return false
	}
	return true
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	if err := topicconfig.CheckName(name); err != nil {
		return fmt.Errorf("topic name %q %w", name, err)
	}
	return nil
}

func isExists(err error) bool { return errors.Is(err, store.ErrExists) }

// maxAssignedReplicas bounds the replicas one partition of a manual
// assignment may name. Kafka refuses brokers that do not exist, so its
// bound is the cluster's size; Eddy does not check the ids (see below),
// so it bounds the list instead: far above any replication factor in use,
// and small enough that checking a request costs little whoever sends it.
const maxAssignedReplicas = 1024

// checkAssignment applies Kafka's rules to manual replica assignments
// (CreateTopics, CreatePartitions): every partition names at least one
// replica, no broker twice, and all name the same number. Which brokers
// they name is not checked: Eddy places partitions itself and has no
// replicas, so only the count of partitions is taken from an assignment.
// The error is Kafka's INVALID_REPLICA_ASSIGNMENT message. Callers check
// the partition count (at most topicconfig.MaxPartitions) first.
func checkAssignment(replicas [][]int32) error {
	seen := make(map[int32]struct{})
	for i, rs := range replicas {
		if len(rs) == 0 {
			return fmt.Errorf("partition %d of the assignment names no replica", i)
		}
		if len(rs) > maxAssignedReplicas {
			return fmt.Errorf("partition %d names %d replicas, more than %d", i, len(rs), maxAssignedReplicas)
		}
		if len(rs) != len(replicas[0]) {
			return fmt.Errorf("all partitions should have the same number of replicas (%d has %d, %d has %d)", 0, len(replicas[0]), i, len(rs))
		}
		clear(seen)
		for _, b := range rs {
			if b < 0 {
				return fmt.Errorf("partition %d names broker %d: broker ids are not negative", i, b)
			}
			if _, dup := seen[b]; dup {
				return fmt.Errorf("partition %d names broker %d twice", i, b)
			}
			seen[b] = struct{}{}
		}
	}
	return nil
}
