package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions (API key 37).
// Versions: 0-3.
//
// Any broker accepts it (there is no controller to forward to).
//
// Deviation: a manual replica assignment is accepted as Kafka checks it
// (one per new partition, each with the same number of distinct replicas;
// INVALID_REPLICA_ASSIGNMENT otherwise), but only the count is used:
// placement is Eddy's, and the brokers it names are not checked.
//
// Authorization: ALTER on the topic.

func handleCreatePartitions(s *Server, c *conn, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	var grown []string
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !c.may(acl.Topic, rt.Topic, acl.Alter) {
			st.ErrorCode, st.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to alter this topic")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		_, t := s.topic(c, rt.Topic)
		var assignErr error
		if t != nil && len(rt.Assignment) > 0 && len(rt.Assignment) <= topicconfig.MaxPartitions && rt.Count <= topicconfig.MaxPartitions {
			assignErr = checkAssignment(newReplicas(rt.Assignment))
		}
		switch {
		case t == nil:
			st.ErrorCode, st.ErrorMessage = kerr.UnknownTopicOrPartition.Code, strp("topic does not exist")
		case rt.Count <= int32(len(t.Partitions)):
			st.ErrorCode = kerr.InvalidPartitions.Code
			st.ErrorMessage = strp(fmt.Sprintf("topic has %d partitions; the new count %d must be larger", len(t.Partitions), rt.Count))
		case len(rt.Assignment) > 0 && len(rt.Assignment) != int(rt.Count)-len(t.Partitions):
			st.ErrorCode = kerr.InvalidReplicaAssignment.Code
			st.ErrorMessage = strp(fmt.Sprintf("increasing the number of partitions by %d but %d assignments provided", int(rt.Count)-len(t.Partitions), len(rt.Assignment)))
		case rt.Count > topicconfig.MaxPartitions:
			st.ErrorCode = kerr.InvalidPartitions.Code
			st.ErrorMessage = strp(fmt.Sprintf("partition count must be at most %d", topicconfig.MaxPartitions))
		case assignErr != nil:
			st.ErrorCode = kerr.InvalidReplicaAssignment.Code
			st.ErrorMessage = strp(assignErr.Error())
		case req.ValidateOnly:
		default:
			if err := s.store.CreatePartitions(ctx, c.cluster, rt.Topic, rt.Count); err != nil {
				st.ErrorCode, _ = errCode(err)
				if errors.Is(err, store.ErrInvalid) {
					st.ErrorCode = kerr.InvalidPartitions.Code
				}
				st.ErrorMessage = strp(err.Error())
				break
			}
			grown = append(grown, rt.Topic)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(grown) > 0 {
		s.awaitLeaders(ctx, c.cluster, grown)
	}
	return resp
}

func newReplicas(as []kmsg.CreatePartitionsRequestTopicAssignment) [][]int32 {
	out := make([][]int32, len(as))
	for i, a := range as {
		out[i] = a.Replicas
	}
	return out
}
