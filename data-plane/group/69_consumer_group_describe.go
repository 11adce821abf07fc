package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe (KIP-848): versions 0-1.
//
// Describes KIP-848 groups: state (Empty, Assigning, Reconciling, Stable),
// group and assignment epochs, the assignor, and every member with its
// current and target assignment. A classic group fails with
// GROUP_ID_NOT_FOUND, as in Kafka, and so does an unknown group. Authorized
// operations are not computed (the field keeps its "not requested" value).

// ConsumerGroupDescribe describes the KIP-848 groups of req.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, cluster string, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := kmsg.NewPtrConsumerGroupDescribeResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group = id
		if id == "" {
			rg.ErrorCode = kerr.InvalidGroupID.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		if err := c.do(ctx, func() { describeConsumer(c.get(key{cluster, id}), &rg) }); err != nil {
			rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// describeConsumer fills rg from g; it runs on the loop.
func describeConsumer(g *group, rg *kmsg.ConsumerGroupDescribeResponseGroup) {
	if g == nil || g.cg == nil {
		rg.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "no consumer group " + rg.Group
		rg.ErrorMessage = &msg
		return
	}
	cg := g.cg
	rg.State = cg.state()
	rg.Epoch = cg.epoch
	rg.AssignmentEpoch = cg.targetEpoch
	rg.AssignorName = cg.assignor
	for _, m := range sortedMembers(cg) {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.RackID = m.rackID
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = slices.Clone(m.subscribed)
		if m.regex != "" {
			re := m.regex
			dm.SubscribedTopicRegex = &re
		}
		// v1+: 0 for a member using the classic protocol, 1 for the
		// consumer protocol.
		dm.MemberType = 1
		if m.classic != nil {
			dm.MemberType = 0
		}
		dm.Assignment.TopicPartitions = cg.describeAssignment(m.assigned)
		dm.TargetAssignment.TopicPartitions = cg.describeAssignment(cg.target[m.id])
		rg.Members = append(rg.Members, dm)
	}
}

func (cg *consumerGroup) describeAssignment(s tpSet) []kmsg.AssignmentTopicPartition {
	var out []kmsg.AssignmentTopicPartition
	for _, t := range assignmentTopics(s) {
		at := kmsg.AssignmentTopicPartition{TopicID: t.TopicID, Topic: cg.names[t.TopicID], Partitions: t.Partitions}
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b kmsg.AssignmentTopicPartition) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}
