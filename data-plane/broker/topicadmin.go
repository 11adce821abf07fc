package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	if _, err := s.store.CreateTopic(ctx, store.AnyOrg, c.cluster, name, cl.DefaultPartitions, nil); err != nil && !isExists(err) {
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

// checkAssignment applies Kafka's rules to manual replica assignments
// (CreateTopics, CreatePartitions): every partition names at least one
// replica, no broker twice, and all name the same number. Which brokers
// they name is not checked: Eddy places partitions itself and has no
// replicas, so only the count of partitions is taken from an assignment.
// The error is Kafka's INVALID_REPLICA_ASSIGNMENT message.
func checkAssignment(replicas [][]int32) error {
	for i, rs := range replicas {
		if len(rs) == 0 {
			return fmt.Errorf("partition %d of the assignment names no replica", i)
		}
		if len(rs) != len(replicas[0]) {
			return fmt.Errorf("all partitions should have the same number of replicas (%d has %d, %d has %d)", 0, len(replicas[0]), i, len(rs))
		}
		for j, b := range rs {
			if b < 0 {
				return fmt.Errorf("partition %d names broker %d: broker ids are not negative", i, b)
			}
			if slices.Contains(rs[:j], b) {
				return fmt.Errorf("partition %d names broker %d twice", i, b)
			}
		}
	}
	return nil
}
