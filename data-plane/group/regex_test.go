package group

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a cluster's topics that tests create as they go; it counts
// the listings the coordinator asks for.
type fakeTopics struct {
	topics  map[string]TopicInfo
	version uint64
	listed  int
}

func (f *fakeTopics) create(name string, partitions int32) {
	f.topics[name] = TopicInfo{ID: [16]byte{byte(len(f.topics) + 1)}, Name: name, Partitions: partitions}
	f.version++
}

func (f *fakeTopics) view() Topics {
	return Topics{
		Lookup: func(name string) (TopicInfo, bool) { ti, ok := f.topics[name]; return ti, ok },
		Names: func() []string {
			f.listed++
			var out []string
			for n := range f.topics {
				out = append(out, n)
			}
			return out
		},
		Version: f.version,
	}
}

func regexHeartbeat(t *testing.T, c *Coordinator, f *fakeTopics, id string, epoch int32, regex string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "g", id, epoch, 30000
	req.SubscribedTopicRegex = &regex
	if epoch == 0 {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	return c.ConsumerGroupHeartbeat(testCtx(t), "c1", req, f.view())
}

// assignedNames maps a heartbeat's assignment to topic names.
func assignedNames(f *fakeTopics, resp *kmsg.ConsumerGroupHeartbeatResponse) []string {
	var out []string
	for _, at := range resp.Assignment.Topics {
		for n, ti := range f.topics {
			if ti.ID == at.TopicID {
				for range at.Partitions {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestRegexSubscription: a regex is resolved when a member brings it, a
// topic created later joins the assignment once the refresh interval has
// passed (bumping the group epoch), and heartbeats in between list no
// topics.
func TestRegexSubscription(t *testing.T) {
	cfg := testConfig()
	cfg.ConsumerRegexRefreshInterval = 100 * time.Millisecond
	c := newTestCoordinator(t, cfg, newMemStore())
	f := &fakeTopics{topics: map[string]TopicInfo{}}
	f.create("orders-1", 2)
	f.create("payments", 2)
	f.create("xorders-1", 1) // matches only unanchored

	resp := regexHeartbeat(t, c, f, "a", 0, "orders-.*")
	if resp.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	epoch := resp.MemberEpoch
	if got := assignedNames(f, resp); !slices.Equal(got, []string{"orders-1", "orders-1"}) {
		t.Fatalf("assigned %v, want orders-1's two partitions", got)
	}
	if f.listed != 1 {
		t.Fatalf("the join listed topics %d times, want 1", f.listed)
	}

	f.create("orders-2", 1)
	start := time.Now()
	for i := 0; i < 5 && time.Since(start) < cfg.ConsumerRegexRefreshInterval/2; i++ {
		if resp := regexHeartbeat(t, c, f, "a", epoch, "orders-.*"); resp.ErrorCode != 0 || resp.MemberEpoch != epoch {
			t.Fatalf("heartbeat within the interval: %v epoch %d, want %d", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch, epoch)
		}
	}
	if f.listed != 1 {
		t.Fatalf("heartbeats within the refresh interval listed topics %d times", f.listed-1)
	}
	time.Sleep(cfg.ConsumerRegexRefreshInterval)
	resp = regexHeartbeat(t, c, f, "a", epoch, "orders-.*")
	if resp.ErrorCode != 0 || resp.MemberEpoch <= epoch || resp.Assignment == nil {
		t.Fatalf("heartbeat after orders-2 was created: %v epoch %d (was %d)", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch, epoch)
	}
	if got := assignedNames(f, resp); !slices.Equal(got, []string{"orders-1", "orders-1", "orders-2"}) {
		t.Fatalf("assigned %v, want orders-1 and orders-2", got)
	}
	// Unchanged metadata: no listing however long it has been.
	time.Sleep(cfg.ConsumerRegexRefreshInterval)
	listed := f.listed
	regexHeartbeat(t, c, f, "a", resp.MemberEpoch, "orders-.*")
	if f.listed != listed {
		t.Fatalf("a heartbeat with unchanged metadata listed topics")
	}
}

// TestRegexBounds: invalid, oversized and one-too-many regexes are
// INVALID_REGULAR_EXPRESSION, and nothing joins.
func TestRegexBounds(t *testing.T) {
	cfg := testConfig()
	cfg.ConsumerMaxRegexLength, cfg.ConsumerMaxRegexes = 16, 2
	c := newTestCoordinator(t, cfg, newMemStore())
	f := &fakeTopics{topics: map[string]TopicInfo{}}
	f.create("t", 1)
	for _, tc := range []struct {
		name, id, regex string
		want            int16
	}{
		{"invalid", "a", "t(", kerr.InvalidRegularExpression.Code},
		{"too long", "a", strings.Repeat("t", 17), kerr.InvalidRegularExpression.Code},
		{"first", "a", "t.*", 0},
		{"second", "b", "u.*", 0},
		{"same as first", "c", "t.*", 0},
		{"third distinct", "d", "v.*", kerr.InvalidRegularExpression.Code},
	} {
		if got := regexHeartbeat(t, c, f, tc.id, 0, tc.regex).ErrorCode; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
	// A member dropping its regex frees the group's slot for another.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", "b", -1
	if resp := c.ConsumerGroupHeartbeat(testCtx(t), "c1", req, f.view()); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if got := regexHeartbeat(t, c, f, "d", 0, "v.*").ErrorCode; got != 0 {
		t.Fatalf("a regex after another left: %v", kerr.ErrorForCode(got))
	}
}
