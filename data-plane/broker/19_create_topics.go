package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics (API key 19).
// Versions: 0-7.
//
// Any broker accepts it (there is no controller to forward to). Topics are
// created in the connection's virtual cluster.
//
// Deviations: the replication factor is accepted but has no effect: object
// storage is the durability point, so it is reported as 1 (-1 or any
// positive value is valid). A manual replica assignment is accepted as
// Kafka checks it (NumPartitions and ReplicationFactor -1, partitions 0 to
// n-1 each once, every one with the same number of distinct replicas;
// INVALID_REPLICA_ASSIGNMENT otherwise), but only its partition count is
// used: placement is Eddy's, and the brokers it names are not checked.
//
// Authorization: CREATE on the cluster or the topic (and DESCRIBE_CONFIGS
// to see the configs in the answer).

func handleCreateTopics(s *Server, c *conn, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	v := s.view.Load()
	cl := v.clusters[c.cluster]
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	ctx, cancel := context.WithTimeout(c.ctx, max(timeout, 5*time.Second))
	defer cancel()
	var created []string
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic, st.NumPartitions, st.ReplicationFactor = rt.Topic, rt.NumPartitions, 1
		fail := func(code int16, msg string) {
			st.ErrorCode, st.ErrorMessage = code, strp(msg)
			st.NumPartitions, st.ReplicationFactor = -1, -1
		}
		configs := map[string]string{}
		var stored map[string]string // as store.CreateTopic stored them
		for _, cf := range rt.Configs {
			if cf.Value != nil {
				configs[cf.Name] = *cf.Value
			}
		}
		// The assignment is checked only for a principal that may create
		// the topic: checking costs in proportion to what it names.
		authorized := c.mayCreateTopic(rt.Topic)
		var assignErr error
		if authorized {
			assignErr = replicaAssignment(rt)
		}
		if len(rt.ReplicaAssignment) > 0 && assignErr == nil {
			st.NumPartitions = int32(len(rt.ReplicaAssignment))
		} else if st.NumPartitions == -1 {
			st.NumPartitions = max(cl.DefaultPartitions, 1)
		}
		switch {
		case !authorized:
			fail(kerr.TopicAuthorizationFailed.Code, "not authorized to create this topic")
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once in the request")
		case validTopicName(rt.Topic) != nil:
			fail(kerr.InvalidTopicException.Code, validTopicName(rt.Topic).Error())
		case len(rt.ReplicaAssignment) > 0 && (rt.NumPartitions != -1 || rt.ReplicationFactor != -1):
			fail(kerr.InvalidRequest.Code, "a manual replica assignment needs NumPartitions and ReplicationFactor -1")
		case assignErr != nil:
			fail(kerr.InvalidReplicaAssignment.Code, assignErr.Error())
		case st.NumPartitions <= 0 || st.NumPartitions > topicconfig.MaxPartitions:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("partition count must be between 1 and %d", topicconfig.MaxPartitions))
		case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1:
			fail(kerr.InvalidReplicationFactor.Code, "replication factor must be positive or -1")
		case v.topic(c.cluster, rt.Topic) != nil:
			fail(kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic))
		default:
			if err := topicconfig.ValidateAll(configs); err != nil {
				fail(kerr.InvalidConfig.Code, err.Error())
				break
			}
			if req.ValidateOnly {
				// Nothing is stored: show what would be, from the
				// snapshot, with the store's rule.
				stored = clusterconfig.NewTopicDefaults(cl.BrokerConfigs, cl.DefaultTopicConfigs)
				maps.Copy(stored, configs)
				break
			}
			id, cfg, err := s.store.CreateTopic(ctx, store.AnyOrg, c.cluster, rt.Topic, st.NumPartitions, configs)
			if err != nil {
				code, msg := errCode(err)
				if errors.Is(err, store.ErrExists) {
					msg = fmt.Sprintf("topic %q already exists", rt.Topic)
				}
				fail(code, msg)
				break
			}
			st.TopicID, stored = id, cfg
			created = append(created, rt.Topic)
		}
		if st.ErrorCode == 0 && req.Version >= 5 && !c.decide(acl.Topic, rt.Topic, acl.DescribeConfigs) {
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if st.ErrorCode == 0 && req.Version >= 5 {
			// As stored, with the cluster's defaults beneath the request's
			// configs (store.CreateTopic).
			for _, d := range describeConfigs(topicConfigDefs, stored, nil, false, false) {
				cf := kmsg.NewCreateTopicsResponseTopicConfig()
				cf.Name, cf.Value, cf.ReadOnly, cf.Source, cf.IsSensitive = d.Name, d.Value, d.ReadOnly, int8(d.Source), d.IsSensitive
				st.Configs = append(st.Configs, cf)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(created) > 0 {
		s.awaitLeaders(ctx, c.cluster, created)
	}
	return resp
}

// replicaAssignment checks a topic's manual assignment, which names its
// partitions by index: 0 to n-1, each once.
func replicaAssignment(rt kmsg.CreateTopicsRequestTopic) error {
	if len(rt.ReplicaAssignment) > topicconfig.MaxPartitions {
		return fmt.Errorf("the assignment names %d partitions, more than %d", len(rt.ReplicaAssignment), topicconfig.MaxPartitions)
	}
	replicas := make([][]int32, len(rt.ReplicaAssignment))
	for _, a := range rt.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= len(replicas) || replicas[a.Partition] != nil {
			return fmt.Errorf("partitions should be a consecutive 0-based integer sequence, each named once (got partition %d of %d)", a.Partition, len(replicas))
		}
		replicas[a.Partition] = a.Replicas
		if a.Replicas == nil {
			replicas[a.Partition] = []int32{}
		}
	}
	return checkAssignment(replicas)
}
