package group

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip checks that resp encodes at its version and decodes to the same
// bytes, as the broker's writer and a client's reader will need.
func roundTrip(t *testing.T, name string, resp kmsg.Response, version int16) {
	t.Helper()
	if resp.GetVersion() != version {
		t.Errorf("%s v%d: response has version %d", name, version, resp.GetVersion())
		return
	}
	b := resp.AppendTo(nil)
	fresh := kmsg.ResponseForKey(resp.Key())
	fresh.SetVersion(version)
	if err := fresh.ReadFrom(b); err != nil {
		t.Errorf("%s v%d: response does not decode: %v", name, version, err)
		return
	}
	if !bytes.Equal(fresh.AppendTo(nil), b) {
		t.Errorf("%s v%d: response changes through a round trip", name, version)
	}
}

// viaWire encodes req at version and decodes it the way the broker does, so
// handlers see decoder defaults rather than what a test set.
func viaWire[R kmsg.Request](t *testing.T, req R, version int16) R {
	t.Helper()
	req.SetVersion(version)
	b := req.AppendTo(nil)
	out := kmsg.RequestForKey(req.Key()).(R)
	out.SetVersion(version)
	if err := out.ReadFrom(b); err != nil {
		t.Fatalf("request v%d does not decode: %v", version, err)
	}
	return out
}

// TestEveryVersion calls every handler at every version kmsg knows, with
// requests that went through the wire, and round-trips the responses.
func TestEveryVersion(t *testing.T) {
	t.Parallel()
	bubble(t, testConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		for v := range (&kmsg.JoinGroupRequest{}).MaxVersion() + 1 {
			m := newConsumer(c, "c1", fmt.Sprintf("join-v%d", v), "client")
			m.version = v
			req := viaWire(t, m.joinRequest(), v)
			resp := c.JoinGroup(WithClient(ctx, Client{ID: "client"}), "c1", req)
			if v >= 4 {
				wantCode(t, "first join", resp.ErrorCode, kerr.MemberIDRequired.Code)
				roundTrip(t, "JoinGroup (error)", resp, v)
				m.id = resp.MemberID
				resp = c.JoinGroup(ctx, "c1", viaWire(t, m.joinRequest(), v))
			}
			wantCode(t, fmt.Sprintf("JoinGroup v%d", v), resp.ErrorCode, 0)
			roundTrip(t, "JoinGroup", resp, v)
		}

		ms := formGroup(t, c, "c1", "g", 1, nil)
		m := ms[0]
		for v := range (&kmsg.SyncGroupRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.Generation, req.MemberID = "g", m.generation, m.id
			pt, p := "consumer", "range"
			req.ProtocolType, req.Protocol = &pt, &p
			resp := c.SyncGroup(ctx, "c1", viaWire(t, req, v))
			wantCode(t, fmt.Sprintf("SyncGroup v%d", v), resp.ErrorCode, 0)
			roundTrip(t, "SyncGroup", resp, v)
		}
		for v := range (&kmsg.HeartbeatRequest{}).MaxVersion() + 1 {
			resp := c.Heartbeat(ctx, "c1", viaWire(t, heartbeatRequest(m), v))
			wantCode(t, fmt.Sprintf("Heartbeat v%d", v), resp.ErrorCode, 0)
			roundTrip(t, "Heartbeat", resp, v)
		}
		for v := range (&kmsg.OffsetCommitRequest{}).MaxVersion() + 1 {
			req := commitRequest(m, commitTopic("t", 0, int64(v), "meta"))
			req.InstanceID = nil
			want := int16(0)
			switch {
			case v == 0:
				want = kerr.UnknownMemberID.Code // no member in v0: a simple commit to a group with members
			case v >= 10:
				want = kerr.UnsupportedVersion.Code
			}
			resp := c.OffsetCommit(ctx, "c1", viaWire(t, req, v))
			wantCode(t, fmt.Sprintf("OffsetCommit v%d", v), resp.Topics[0].Partitions[0].ErrorCode, want)
			roundTrip(t, "OffsetCommit", resp, v)
		}
		for v := range (&kmsg.OffsetFetchRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group = "g"
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
			resp := c.OffsetFetch(ctx, "c1", viaWire(t, req, v))
			if v < 8 {
				if got := resp.Topics[0].Partitions[0].Offset; got != 9 {
					t.Errorf("OffsetFetch v%d: offset %d, want the v9 commit", v, got)
				}
			} else {
				wantCode(t, fmt.Sprintf("OffsetFetch v%d", v), resp.Groups[0].ErrorCode, map[bool]int16{true: kerr.UnsupportedVersion.Code}[v >= 10])
			}
			roundTrip(t, "OffsetFetch", resp, v)
		}
		for v := range (&kmsg.DescribeGroupsRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g", "missing"}
			resp := c.DescribeGroups(ctx, "c1", viaWire(t, req, v))
			if resp.Groups[0].State != "Stable" || len(resp.Groups[0].Members) != 1 {
				t.Errorf("DescribeGroups v%d: %+v", v, resp.Groups[0])
			}
			roundTrip(t, "DescribeGroups", resp, v)
		}
		for v := range (&kmsg.ListGroupsRequest{}).MaxVersion() + 1 {
			resp := c.ListGroups(ctx, "c1", viaWire(t, kmsg.NewPtrListGroupsRequest(), v))
			if len(resp.Groups) == 0 {
				t.Errorf("ListGroups v%d listed nothing", v)
			}
			roundTrip(t, "ListGroups", resp, v)
		}
		for v := range (&kmsg.OffsetDeleteRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = "g"
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			roundTrip(t, "OffsetDelete", c.OffsetDelete(ctx, "c1", viaWire(t, req, v)), v)
		}
		for v := range (&kmsg.LeaveGroupRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = "g", "nobody"
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "nobody"}}
			resp := c.LeaveGroup(ctx, "c1", viaWire(t, req, v))
			code := resp.ErrorCode
			if v >= 3 {
				code = resp.Members[0].ErrorCode
			}
			wantCode(t, fmt.Sprintf("LeaveGroup v%d", v), code, kerr.UnknownMemberID.Code)
			roundTrip(t, "LeaveGroup", resp, v)
		}
		for v := range (&kmsg.DeleteGroupsRequest{}).MaxVersion() + 1 {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"g"}
			resp := c.DeleteGroups(ctx, "c1", viaWire(t, req, v))
			wantCode(t, fmt.Sprintf("DeleteGroups v%d", v), resp.Groups[0].ErrorCode, kerr.NonEmptyGroup.Code)
			roundTrip(t, "DeleteGroups", resp, v)
		}
	})
}

// TestRetainsNoRequestMemory decodes requests in place, as a broker reusing
// its read buffer would, and scribbles over the buffer after each call: the
// group's state must not change.
func TestRetainsNoRequestMemory(t *testing.T) {
	t.Parallel()
	bubble(t, testConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := WithClient(testCtx(t), Client{ID: "client", Host: "/10.0.0.1"})
		buf := make([]byte, 0, 4096)
		// unsafe encodes req into buf and decodes it in place; the returned
		// function scribbles over buf.
		unsafe := func(req interface {
			kmsg.Request
			UnsafeReadFrom([]byte) error
		}) func() {
			buf = req.AppendTo(buf[:0])
			if err := req.UnsafeReadFrom(buf); err != nil {
				t.Fatal(err)
			}
			return func() {
				for i := range buf {
					buf[i] = 'X'
				}
			}
		}

		m := newConsumer(c, "c1", "group", "client")
		inst := "instance"
		m.instance = &inst
		join := m.joinRequest()
		scribble := unsafe(join)
		resp := c.JoinGroup(ctx, "c1", join)
		scribble()
		wantCode(t, "join", resp.ErrorCode, 0)
		m.id, m.generation = resp.MemberID, resp.Generation

		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Version = 5
		sync.Group, sync.Generation, sync.MemberID, sync.InstanceID = "group", m.generation, m.id, m.instance
		pt, p := "consumer", "range"
		sync.ProtocolType, sync.Protocol = &pt, &p
		sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: m.id, MemberAssignment: []byte("assignment")}}
		scribble = unsafe(sync)
		wantCode(t, "sync", c.SyncGroup(ctx, "c1", sync).ErrorCode, 0)
		scribble()

		commit := commitRequest(m, commitTopic("topic", 3, 42, "metadata"))
		fetchAll(t, c, "c1", "group") // load the cache so the commit lands in it
		scribble = unsafe(commit)
		wantCode(t, "commit", c.OffsetCommit(ctx, "c1", commit).Topics[0].Partitions[0].ErrorCode, 0)
		scribble()

		d := describe(t, c, "c1", "group")
		if d.Group != "group" || d.Protocol != "range" || d.ProtocolType != "consumer" {
			t.Fatalf("group described as %+v", d)
		}
		dm := d.Members[0]
		if dm.MemberID != m.id || *dm.InstanceID != "instance" || dm.ClientID != "client" || dm.ClientHost != "/10.0.0.1" ||
			string(dm.ProtocolMetadata) != "meta" || string(dm.MemberAssignment) != "assignment" {
			t.Fatalf("member described as %+v", dm)
		}
		if !strings.HasPrefix(m.id, "instance-") {
			t.Fatalf("static member id %q", m.id)
		}
		if o := fetchAll(t, c, "c1", "group")["topic/3"]; o.Offset != 42 || o.Metadata != "metadata" || o.Topic != "topic" {
			t.Fatalf("committed offset %+v", o)
		}
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no initial delay", func(c *Config) { c.InitialRebalanceDelay = 0 }, true},
		{"negative min session", func(c *Config) { c.MinSessionTimeout = -1 }, false},
		{"zero max session", func(c *Config) { c.MaxSessionTimeout = 0 }, false},
		{"max below min", func(c *Config) { c.MaxSessionTimeout = c.MinSessionTimeout - 1 }, false},
		{"negative delay", func(c *Config) { c.InitialRebalanceDelay = -time.Second }, false},
		{"zero metadata cap", func(c *Config) { c.MaxMetadataBytes = 0 }, false},
		{"negative offset metadata cap", func(c *Config) { c.MaxOffsetMetadataBytes = -1 }, false},
		{"zero config", func(c *Config) { *c = Config{} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}

	t.Run("flags", func(t *testing.T) {
		var cfg Config
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if cfg != DefaultConfig() {
			t.Fatalf("flag defaults %+v, want %+v", cfg, DefaultConfig())
		}
		if err := fs.Parse([]string{"--group-initial-rebalance-delay=250ms", "--group-max-metadata-bytes=10"}); err != nil {
			t.Fatal(err)
		}
		if cfg.InitialRebalanceDelay != 250*time.Millisecond || cfg.MaxMetadataBytes != 10 {
			t.Fatalf("parsed %+v", cfg)
		}
	})

	t.Run("New rejects an invalid config", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("New accepted a zero Config")
			}
		}()
		New(Config{}, newMemStore(), nil).Close()
	})
}

// TestContextCancelBeforeLoop: a handler whose ctx is already done answers
// without touching the group.
func TestContextCancelBeforeLoop(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, testConfig(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newConsumer(c, "c1", "g", "client")
	wantCode(t, "join", m.joinOnce(ctx).ErrorCode, kerr.CoordinatorNotAvailable.Code)
}
