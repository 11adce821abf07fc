package acl

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAllowed(t *testing.T) {
	allow := func(rt ResourceType, name string, pt PatternType, op Operation) ACL {
		return ACL{Principal: "User:sa-x", ResourceType: rt, ResourceName: name, PatternType: pt, Operation: op, Permission: Allow, Host: "*"}
	}
	deny := func(rt ResourceType, name string, pt PatternType, op Operation) ACL {
		a := allow(rt, name, pt, op)
		a.Permission = Deny
		return a
	}
	onHost := func(a ACL, h string) ACL { a.Host = h; return a }
	for _, tc := range []struct {
		name string
		g    Grants
		rt   ResourceType
		res  string
		op   Operation
		want bool
	}{
		{"nothing", Grants{}, Topic, "t", Read, false},
		{"org admin", Grants{OrgAdmin: true}, Cluster, ClusterName, Alter, true},
		{"admin role", Grants{Roles: []string{RoleAdmin}}, Group, "g", Delete, true},
		{"read role reads", Grants{Roles: []string{RoleDeveloperRead}}, Topic, "t", Read, true},
		{"read role cannot write", Grants{Roles: []string{RoleDeveloperRead}}, Topic, "t", Write, false},
		{"read role cannot delete groups", Grants{Roles: []string{RoleDeveloperRead}}, Group, "g", Delete, false},
		{"write role writes", Grants{Roles: []string{RoleDeveloperWrite}}, Topic, "t", Write, true},
		{"write role cannot create", Grants{Roles: []string{RoleDeveloperWrite}}, Topic, "t", Create, false},
		{"write role idempotent", Grants{Roles: []string{RoleDeveloperWrite}}, Cluster, ClusterName, IdempotentWrite, true},
		{"unknown role", Grants{Roles: []string{"owner"}}, Topic, "t", Read, false},
		{"literal allow", Grants{ACLs: []ACL{allow(Topic, "t", Literal, Read)}}, Topic, "t", Read, true},
		{"literal other name", Grants{ACLs: []ACL{allow(Topic, "t", Literal, Read)}}, Topic, "t2", Read, false},
		{"wildcard", Grants{ACLs: []ACL{allow(Topic, "*", Literal, Write)}}, Topic, "any", Write, true},
		{"prefixed", Grants{ACLs: []ACL{allow(Topic, "app.", Prefixed, Read)}}, Topic, "app.orders", Read, true},
		{"prefixed miss", Grants{ACLs: []ACL{allow(Topic, "app.", Prefixed, Read)}}, Topic, "other", Read, false},
		{"other type", Grants{ACLs: []ACL{allow(Group, "t", Literal, Read)}}, Topic, "t", Read, false},
		{"all", Grants{ACLs: []ACL{allow(Topic, "t", Literal, All)}}, Topic, "t", Delete, true},
		{"read implies describe", Grants{ACLs: []ACL{allow(Topic, "t", Literal, Read)}}, Topic, "t", Describe, true},
		{"describe does not imply read", Grants{ACLs: []ACL{allow(Topic, "t", Literal, Describe)}}, Topic, "t", Read, false},
		{"alter_configs implies describe_configs", Grants{ACLs: []ACL{allow(Topic, "t", Literal, AlterConfigs)}}, Topic, "t", DescribeConfigs, true},
		{"host match", Grants{ACLs: []ACL{onHost(allow(Topic, "t", Literal, Read), "10.0.0.1")}}, Topic, "t", Read, true},
		{"host miss", Grants{ACLs: []ACL{onHost(allow(Topic, "t", Literal, Read), "10.0.0.2")}}, Topic, "t", Read, false},
		{"deny beats role", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{deny(Topic, "t", Literal, Write)}}, Topic, "t", Write, false},
		{"deny beats org admin", Grants{OrgAdmin: true, ACLs: []ACL{deny(Topic, "secret.", Prefixed, All)}}, Topic, "secret.x", Read, false},
		{"deny elsewhere", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{deny(Topic, "t", Literal, Write)}}, Topic, "u", Write, true},
		{"deny other op", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{deny(Topic, "t", Literal, Write)}}, Topic, "t", Read, true},
		{"deny describe keeps read", Grants{ACLs: []ACL{allow(Topic, "t", Literal, Read), deny(Topic, "t", Literal, Describe)}}, Topic, "t", Read, true},
		{"deny other host", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{onHost(deny(Topic, "t", Literal, Write), "10.0.0.2")}}, Topic, "t", Write, true},
		{"cidr allow", Grants{ACLs: []ACL{onHost(allow(Topic, "t", Literal, Read), "10.0.0.0/24")}}, Topic, "t", Read, true},
		{"cidr allow miss", Grants{ACLs: []ACL{onHost(allow(Topic, "t", Literal, Read), "10.0.1.0/24")}}, Topic, "t", Read, false},
		{"cidr deny beats role", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{onHost(deny(Topic, "t", Literal, Write), "10.0.0.0/8")}}, Topic, "t", Write, false},
		{"cidr deny outside", Grants{Roles: []string{RoleAdmin}, ACLs: []ACL{onHost(deny(Topic, "t", Literal, Write), "192.168.0.0/16")}}, Topic, "t", Write, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.Allowed("10.0.0.1", tc.rt, tc.res, tc.op); got != tc.want {
				t.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := ACL{Principal: "User:sa-abc", ResourceType: Topic, ResourceName: "t", PatternType: Literal, Operation: Read, Permission: Allow}
	if err := ok.Validate(); err != nil || ok.Host != "*" {
		t.Fatalf("valid ACL: %v (host %q)", err, ok.Host)
	}
	for _, tc := range []struct {
		field string
		mod   func(*ACL)
	}{
		{"principal", func(a *ACL) { a.Principal = "sa-abc" }},
		{"principal", func(a *ACL) { a.Principal = "User:bob" }},
		{"resource_type", func(a *ACL) { a.ResourceType = "user" }},
		{"resource_name", func(a *ACL) { a.ResourceName = "" }},
		{"resource_name", func(a *ACL) { a.ResourceType, a.Operation = Cluster, Alter }},
		{"pattern_type", func(a *ACL) { a.PatternType = "match" }},
		{"pattern_type", func(a *ACL) { a.ResourceName, a.PatternType = "*", Prefixed }},
		{"operation", func(a *ACL) { a.Operation = "own" }},
		{"operation", func(a *ACL) { a.ResourceType = Group; a.Operation = Write }},
		{"permission", func(a *ACL) { a.Permission = "maybe" }},
		{"host", func(a *ACL) { a.Host = "example.com" }},
		{"host", func(a *ACL) { a.Host = "10.0.0.0/33" }},
		{"host", func(a *ACL) { a.Host = "10.0.0/8" }},
	} {
		a := ok
		tc.mod(&a)
		var fe *FieldError
		if err := a.Validate(); !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want an error on %s", a, err, tc.field)
		}
	}
}

// TestCIDRHost: a CIDR host is stored in one spelling (its network
// address), and an IPv4 client seen as an IPv4-mapped IPv6 address still
// matches an IPv4 block.
func TestCIDRHost(t *testing.T) {
	a := ACL{Principal: "User:sa-abc", ResourceType: Topic, ResourceName: "t", PatternType: Literal, Operation: Read, Permission: Deny, Host: "10.1.2.3/8"}
	if err := a.Validate(); err != nil || a.Host != "10.0.0.0/8" {
		t.Fatalf("Validate: %v, host %q, want 10.0.0.0/8", err, a.Host)
	}
	if !a.hostMatches("::ffff:10.9.9.9") || a.hostMatches("11.0.0.1") || a.hostMatches("not-an-ip") {
		t.Fatal("hostMatches of 10.0.0.0/8 is wrong")
	}
}

func TestFilter(t *testing.T) {
	a := ACL{Principal: "User:sa-a", ResourceType: Topic, ResourceName: "app.", PatternType: Prefixed, Operation: Read, Permission: Allow, Host: "*"}
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{ResourceType: Group}, false},
		{Filter{ResourceName: s("app.")}, true},
		{Filter{ResourceName: s("app.x")}, false},
		{Filter{ResourceName: s("app.x"), PatternType: "match"}, true},
		{Filter{ResourceName: s("other"), PatternType: "match"}, false},
		{Filter{PatternType: "literal"}, false},
		{Filter{PatternType: "prefixed", Principal: s("User:sa-a")}, true},
		{Filter{Principal: s("User:sa-b")}, false},
		{Filter{Operation: Write}, false},
		{Filter{Permission: Deny}, false},
		{Filter{Host: s("*")}, true},
	} {
		if got := tc.f.Matches(&a); got != tc.want {
			t.Errorf("%+v: Matches = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestKafkaCodes(t *testing.T) {
	a := ACL{ResourceType: TransactionalID, PatternType: Prefixed, Operation: DescribeConfigs, Permission: Deny}
	rt, pt, op, perm := a.Kafka()
	r2, p2, o2, m2, ok := FromKafka(rt, pt, op, perm)
	if !ok || r2 != a.ResourceType || p2 != a.PatternType || o2 != a.Operation || m2 != a.Permission {
		t.Fatalf("round trip: %v %v %v %v %v", r2, p2, o2, m2, ok)
	}
	if _, _, _, _, ok := FromKafka(kmsg.ACLResourceTypeAny, pt, op, perm); ok {
		t.Fatal("ANY accepted as a concrete resource type")
	}
	if _, none, ok := FilterFromKafka(kmsg.ACLResourceTypeUser, nil, kmsg.ACLResourcePatternTypeAny, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny); !ok || !none {
		t.Fatal("a filter on user resources should be valid and match nothing")
	}
	if _, _, ok := FilterFromKafka(99, nil, kmsg.ACLResourcePatternTypeAny, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny); ok {
		t.Fatal("unknown resource type accepted")
	}
}

// BenchmarkAllowed: one decision for a principal with a role and 50 ACLs
// (the broker memoises decisions, so this is the cost of a first one).
func BenchmarkAllowed(b *testing.B) {
	g := Grants{Roles: []string{RoleDeveloperRead}}
	for i := range 50 {
		g.ACLs = append(g.ACLs, ACL{Principal: "User:sa-x", ResourceType: Topic, ResourceName: "app" + string(rune('a'+i%26)) + ".",
			PatternType: Prefixed, Operation: Write, Permission: Allow, Host: "*"})
	}
	for b.Loop() {
		if !g.Allowed("10.0.0.1", Topic, "appz.orders", Write) {
			b.Fatal("denied")
		}
	}
}
