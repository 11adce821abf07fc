package share

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHeartbeatMembership(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxGroups = 1
	g := NewGroups(cfg)
	topic := Topic{ID: [16]byte{7}, Name: "jobs", Partitions: 2}
	lookup := func(name string) (Topic, bool) { return topic, name == "jobs" }
	beat := func(group, member string, epoch int32, subs []string) *kmsg.ShareGroupHeartbeatResponse {
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = group, member, epoch, subs
		return g.Heartbeat("vc", Client{ID: "c"}, req, lookup)
	}
	a := beat("g", "a", 0, []string{"jobs"})
	if a.ErrorCode != 0 || a.MemberEpoch != 1 || a.Assignment == nil || len(a.Assignment.TopicPartitions[0].Partitions) != 2 {
		t.Fatalf("first member: %+v", a)
	}
	b := beat("g", "b", 0, []string{"jobs"})
	if b.ErrorCode != 0 || b.MemberEpoch != 2 || len(b.Assignment.TopicPartitions[0].Partitions) != 1 {
		t.Fatalf("second member: %+v", b)
	}
	// a learns the new epoch and its smaller share with its next heartbeat.
	a = beat("g", "a", 1, nil)
	if a.MemberEpoch != 2 || a.Assignment == nil || len(a.Assignment.TopicPartitions[0].Partitions) != 1 {
		t.Fatalf("first member after the second joined: %+v", a)
	}
	if r := beat("g", "a", 7, nil); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("a heartbeat at a future epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := beat("g", "nobody", 2, nil); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("an unknown member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := beat("other", "c", 0, []string{"jobs"}); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("a second group over MaxGroups 1: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	beat("g", "a", -1, nil)
	beat("g", "b", -1, nil)
	if r := beat("other", "c", 0, []string{"jobs"}); r.ErrorCode != 0 {
		t.Fatalf("a group after the first emptied: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if l := g.List("vc"); len(l) != 1 || l[0].Group != "other" {
		t.Fatalf("listed %+v", l)
	}
}
