package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
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

	// topic is a CreateTopics topic assigning partition i to assign[i].
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
	create := func(rt kmsg.CreateTopicsRequestTopic) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics, req.TimeoutMillis = append(req.Topics, rt), 30_000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	// grow asks for count partitions, assigning each new one to assign[i].
	grow := func(name string, count int32, assign ...[]int32) error {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, rs := range assign {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = rs
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics, req.TimeoutMillis = append(req.Topics, rt), 30_000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}

	t.Run("franz-go", func(t *testing.T) {
		if ct := create(topic("kgo-assigned", -1, -1, []int32{b}, []int32{b})); ct.ErrorCode != 0 || ct.NumPartitions != 2 {
			t.Fatalf("create with 2 assigned: error %v, %d partitions", kerr.ErrorForCode(ct.ErrorCode), ct.NumPartitions)
		}
		if err := grow("kgo-assigned", 4, []int32{b}, []int32{b}); err != nil {
			t.Fatalf("create partitions with assignments: %v", err)
		}
		// Brokers learn the new partitions from Postgres (a notice, then
		// a read of the routing view): Metadata shows them shortly after
		// CreatePartitions answered, as in Kafka.
		poll.Until(t, 30*time.Second, "Metadata to show the 4 partitions", func() error {
			if n := partitionsOf("kgo-assigned"); n != 4 {
				return fmt.Errorf("Metadata reports %d partitions after growing to 4", n)
			}
			return nil
		})
	})

	t.Run("refused", func(t *testing.T) {
		gap := topic("bad-gap", -1, -1, []int32{b}, []int32{b})
		gap.ReplicaAssignment[1].Partition = 2
		// A list of replicas past the bound is refused before it is
		// checked broker by broker (checking costs what it names).
		many := make([]int32, 100_000)
		for i := range many {
			many[i] = int32(i)
		}
		for _, tc := range []struct {
			name string
			rt   kmsg.CreateTopicsRequestTopic
			want *kerr.Error
		}{
			{"uneven replica counts", topic("bad-uneven", -1, -1, []int32{b}, []int32{b, b + 1}), kerr.InvalidReplicaAssignment},
			{"gap in partitions", gap, kerr.InvalidReplicaAssignment},
			{"no replicas", topic("bad-empty", -1, -1, []int32{}), kerr.InvalidReplicaAssignment},
			{"broker twice", topic("bad-twice", -1, -1, []int32{b, b}), kerr.InvalidReplicaAssignment},
			{"too many replicas", topic("bad-many", -1, -1, many), kerr.InvalidReplicaAssignment},
			{"partition count too", topic("bad-count", 2, -1, []int32{b}, []int32{b}), kerr.InvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := kerr.ErrorForCode(create(tc.rt).ErrorCode); got != tc.want {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
		if got := grow("kgo-assigned", 6, []int32{b}); got != kerr.InvalidReplicaAssignment {
			t.Fatalf("growing by 2 with 1 assignment: got %v, want INVALID_REPLICA_ASSIGNMENT", got)
		}
		if got := grow("kgo-assigned", 6, []int32{b}, []int32{b, b + 1}); got != kerr.InvalidReplicaAssignment {
			t.Fatalf("growing with uneven assignments: got %v, want INVALID_REPLICA_ASSIGNMENT", got)
		}
	})
}
