package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestClientQuotas: kadm describes the cluster's effective rates as the
// default user's producer_byte_rate and consumer_byte_rate, alters them
// within the plan's ceilings (POLICY_VIOLATION above, INVALID_REQUEST out
// of range, for another entity or another quota, or a quota twice),
// refuses malformed filters (INVALID_REQUEST), and removing one
// restores the default under the ceiling.
func TestClientQuotas(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := lowerDefaultPlan(t, url, func(c *limits.Limits) { c.IngressMBps = 50 }) // below the default of 100
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1})
	adm := kadm.NewClient(newClient(t, s))

	defaultUser := kadm.ClientQuotaEntity{{Type: "user"}}
	describe := func() map[string]float64 {
		t.Helper()
		qs, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 1 || len(qs[0].Entity) != 1 || qs[0].Entity[0].Type != "user" || qs[0].Entity[0].Name != nil {
			t.Fatalf("described %+v, want the default user's quotas", qs)
		}
		out := map[string]float64{}
		for _, v := range qs[0].Values {
			out[v.Key] = v.Value
		}
		return out
	}
	if q := describe(); q["producer_byte_rate"] != 50e6 || q["consumer_byte_rate"] != 300e6 {
		t.Errorf("quotas %v, want producer 50e6 (the ceiling) and consumer 300e6 (the default)", q)
	}
	for _, filter := range [][]kadm.DescribeClientQuotaComponent{
		{{Type: "user", MatchName: kmsg.StringPtr("alice")}},
		{{Type: "client-id", MatchType: 2}},
	} {
		if qs, err := adm.DescribeClientQuotas(ctx, false, filter); err != nil || len(qs) != 0 {
			t.Errorf("filter %+v: %+v %v, want nothing", filter, qs, err)
		}
	}

	// Malformed filters are INVALID_REQUEST, as Kafka, not "no match".
	for name, filter := range map[string][]kadm.DescribeClientQuotaComponent{
		"exact without a name": {{Type: "user", MatchType: 0}},
		"default with a name":  {{Type: "user", MatchType: 1, MatchName: kmsg.StringPtr("alice")}},
		"unknown match type":   {{Type: "user", MatchType: 7}},
		"entity type twice":    {{Type: "user", MatchType: 1}, {Type: "user", MatchType: 2}},
	} {
		if qs, err := adm.DescribeClientQuotas(ctx, false, filter); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("filter %s: %+v %v, want INVALID_REQUEST", name, qs, err)
		}
	}

	alter := func(entity kadm.ClientQuotaEntity, ops ...kadm.AlterClientQuotaOp) error {
		t.Helper()
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Err
	}
	if err := alter(defaultUser, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 60e6}); !errors.Is(err, kerr.PolicyViolation) {
		t.Errorf("producer_byte_rate above the ceiling: %v, want POLICY_VIOLATION", err)
	}
	for _, tc := range []struct {
		name   string
		entity kadm.ClientQuotaEntity
		op     kadm.AlterClientQuotaOp
	}{
		{"below 1 MB/s", defaultUser, kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 1000}},
		{"above the range", defaultUser, kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 20_000e6}},
		{"request_percentage", defaultUser, kadm.AlterClientQuotaOp{Key: "request_percentage", Value: 50}},
		{"a named user", kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}}, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 2e6}},
		{"a client id", kadm.ClientQuotaEntity{{Type: "client-id"}}, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 2e6}},
	} {
		if err := alter(tc.entity, tc.op); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("%s: %v, want INVALID_REQUEST", tc.name, err)
		}
	}
	if err := alter(defaultUser, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 2e6},
		kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 3e6}); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("a quota key twice in an entry: %v, want INVALID_REQUEST", err)
	}
	if res, err := adm.ValidateAlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: defaultUser,
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10e6}}}}); err != nil || res[0].Err != nil {
		t.Errorf("validate only: %v %+v", err, res)
	}
	if q := describe(); q["producer_byte_rate"] != 50e6 || q["consumer_byte_rate"] != 300e6 {
		t.Errorf("refused and validate-only alterations changed the quotas: %v", q)
	}

	if err := alter(defaultUser, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 20e6},
		kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 2_500_000}); err != nil {
		t.Fatal(err)
	}
	if q := describe(); q["producer_byte_rate"] != 20e6 || q["consumer_byte_rate"] != 2e6 {
		t.Errorf("after alter: %v, want producer 20e6 and consumer 2e6 (whole MB/s)", q)
	}
	if own, _, err := st.Limits(ctx, "vc-dev"); err != nil || own.IngressMBps != 20 || own.EgressMBps != 2 {
		t.Errorf("cluster limits after alter: %+v %v", own, err)
	}
	if err := alter(defaultUser, kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Remove: true},
		kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Remove: true}); err != nil {
		t.Fatal(err)
	}
	if q := describe(); q["producer_byte_rate"] != 50e6 || q["consumer_byte_rate"] != 300e6 {
		t.Errorf("after remove: %v, want the defaults under the ceiling", q)
	}
}
