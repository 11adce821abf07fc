package broker_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReplicaAssignments: admin tools that always send manual replica
// assignments get the partitions they asked for (the count is taken from
// the assignment, placement stays Eddy's): librdkafka's admin API creating
// and growing a topic, and franz-go's CreatePartitions with assignments
// (kadm sends none, so the request is kmsg's). Assignments Kafka refuses
// get its INVALID_REPLICA_ASSIGNMENT or INVALID_REQUEST.
func TestReplicaAssignments(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	partitionsOf := func(topic string) int {
		t.Helper()
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return len(td[topic].Partitions)
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		t.Fatalf("brokers: %v %v", brokers, err)
	}
	b := brokers[0].NodeID

	t.Run("librdkafka", func(t *testing.T) {
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
			t.Fatalf("python3-confluent-kafka is not installed (`make deps` installs it): %v", err)
		}
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "test", "py", "assign.py")
		out, err := exec.CommandContext(ctx, py, script, strings.Join(s.Bootstrap(), ","), "rdkafka-assigned").CombinedOutput()
		if err != nil {
			t.Fatalf("assign.py: %v\n%s", err, out)
		}
		var got struct{ Created, Grown int }
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
			t.Fatalf("assign.py printed %q: %v", out, err)
		}
		if got.Created != 3 || got.Grown != 5 {
			t.Fatalf("librdkafka saw %d partitions after creating with 3 assigned and %d after growing to 5", got.Created, got.Grown)
		}
	})

	t.Run("franz-go", func(t *testing.T) {
		create := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "kgo-assigned", -1, -1
		for p := range int32(2) {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, []int32{b}
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		create.Topics = append(create.Topics, rt)
		create.TimeoutMillis = 30_000
		cresp, err := create.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if ct := cresp.Topics[0]; ct.ErrorCode != 0 || ct.NumPartitions != 2 {
			t.Fatalf("create with 2 assigned: error %v, %d partitions", kerr.ErrorForCode(ct.ErrorCode), ct.NumPartitions)
		}

		grow := kmsg.NewPtrCreatePartitionsRequest()
		gt := kmsg.NewCreatePartitionsRequestTopic()
		gt.Topic, gt.Count = "kgo-assigned", 4
		for range 2 {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = []int32{b}
			gt.Assignment = append(gt.Assignment, a)
		}
		grow.Topics = append(grow.Topics, gt)
		grow.TimeoutMillis = 30_000
		gresp, err := grow.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := gresp.Topics[0].ErrorCode; code != 0 {
			t.Fatalf("create partitions with assignments: %v", kerr.ErrorForCode(code))
		}
		if n := partitionsOf("kgo-assigned"); n != 4 {
			t.Fatalf("Metadata reports %d partitions after growing to 4", n)
		}
	})

	t.Run("refused", func(t *testing.T) {
		topic := func(name string, num int32, rf int16, assign ...[]int32) kmsg.CreateTopicsRequestTopic {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, num, rf
			for p, rs := range assign {
				a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
				a.Partition, a.Replicas = int32(p), rs
				rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
			}
			return rt
		}
		gap := topic("bad-gap", -1, -1, []int32{b}, []int32{b})
		gap.ReplicaAssignment[1].Partition = 2
		for _, tc := range []struct {
			name string
			rt   kmsg.CreateTopicsRequestTopic
			want *kerr.Error
		}{
			{"uneven replica counts", topic("bad-uneven", -1, -1, []int32{b}, []int32{b, b + 1}), kerr.InvalidReplicaAssignment},
			{"gap in partitions", gap, kerr.InvalidReplicaAssignment},
			{"no replicas", topic("bad-empty", -1, -1, []int32{}), kerr.InvalidReplicaAssignment},
			{"broker twice", topic("bad-twice", -1, -1, []int32{b, b}), kerr.InvalidReplicaAssignment},
			{"partition count too", topic("bad-count", 2, -1, []int32{b}, []int32{b}), kerr.InvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.Topics = append(req.Topics, tc.rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					t.Fatal(err)
				}
				if got := kerr.ErrorForCode(resp.Topics[0].ErrorCode); got != tc.want {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
		uneven := kmsg.NewPtrCreatePartitionsRequest()
		gt := kmsg.NewCreatePartitionsRequestTopic()
		gt.Topic, gt.Count = "kgo-assigned", 6
		gt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{b}}}
		uneven.Topics = append(uneven.Topics, gt)
		resp, err := uneven.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := kerr.ErrorForCode(resp.Topics[0].ErrorCode); got != kerr.InvalidReplicaAssignment {
			t.Fatalf("growing by 2 with 1 assignment: got %v, want INVALID_REPLICA_ASSIGNMENT", got)
		}
	})
}
