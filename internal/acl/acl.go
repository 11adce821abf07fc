// Package acl is Eddy's authorization model, shared by the broker (which
// decides), the Kafka ACL APIs and the REST API (which store ACLs): Kafka's
// resource types, operations, pattern types and permissions, what the
// control plane's roles grant, and how ACLs match a request.
//
// Decisions follow Kafka's AclAuthorizer:
//
//   - a DENY ACL that matches wins over everything, roles included;
//   - otherwise a role (Grants.Roles, or OrgAdmin) or an ALLOW ACL grants;
//   - ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE, and ALLOW of
//     ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation;
//   - a literal resource name "*" matches every resource of its type, a
//     prefixed one every name that starts with it; principal "User:*"
//     matches every principal and host "*" every host;
//   - nothing else is allowed.
//
// The names are Kafka's, in lower case ("describe_configs",
// "transactional_id"), as REST and the acls table spell them. Everything
// here is a pure function of its arguments and safe for concurrent use.
package acl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResourceType is what an ACL protects.
type ResourceType string

const (
	Topic           ResourceType = "topic"
	Group           ResourceType = "group"
	Cluster         ResourceType = "cluster"
	TransactionalID ResourceType = "transactional_id"
)

// ClusterName is the one name of the cluster resource, as in Kafka.
const ClusterName = "kafka-cluster"

// Operation is a Kafka ACL operation.
type Operation string

const (
	All             Operation = "all"
	Read            Operation = "read"
	Write           Operation = "write"
	Create          Operation = "create"
	Delete          Operation = "delete"
	Alter           Operation = "alter"
	Describe        Operation = "describe"
	ClusterAction   Operation = "cluster_action"
	DescribeConfigs Operation = "describe_configs"
	AlterConfigs    Operation = "alter_configs"
	IdempotentWrite Operation = "idempotent_write"
)

// PatternType says how an ACL's resource name matches.
type PatternType string

const (
	Literal  PatternType = "literal"
	Prefixed PatternType = "prefixed"
)

// Permission is allow or deny.
type Permission string

const (
	Allow Permission = "allow"
	Deny  Permission = "deny"
)

// Roles a service account can hold on a cluster (role_bindings.role).
const (
	RoleAdmin          = "admin"
	RoleDeveloperRead  = "developer-read"
	RoleDeveloperWrite = "developer-write"
)

// The valid values, in the order documentation lists them.
var (
	ResourceTypes = []ResourceType{Topic, Group, Cluster, TransactionalID}
	Operations    = []Operation{All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite}
	PatternTypes  = []PatternType{Literal, Prefixed}
	Permissions   = []Permission{Allow, Deny}
)

// ACL is one access control entry of a virtual cluster.
type ACL struct {
	ID           string
	Cluster      string
	Principal    string // "User:<service-account-id>" or "User:*"
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Operation    Operation
	Permission   Permission
	Host         string // "*", an IP address, or a CIDR block (KIP-1276) such as 10.0.0.0/8
}

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("acl: invalid")

// AnyPrincipal matches every principal.
const AnyPrincipal = "User:*"

// Principal is the ACL principal of a service account.
func Principal(serviceAccount string) string { return "User:" + serviceAccount }

// FieldError is a Validate error naming the offending field (as REST
// spells it).
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s: %s", ErrInvalid, e.Field, e.Message) }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks a (new) ACL and fills the default host "*". It returns
// a *FieldError.
func (a *ACL) Validate() error {
	if a.Host == "" {
		a.Host = "*"
	}
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case a.Principal != AnyPrincipal && (!strings.HasPrefix(a.Principal, "User:sa-") || len(a.Principal) > 80 || strings.ContainsAny(a.Principal, " \t\n*")):
		return bad("principal", "must be User:<service-account-id> or User:*")
	case !slices.Contains(ResourceTypes, a.ResourceType):
		return bad("resource_type", "must be one of %s", join(ResourceTypes))
	case a.ResourceName == "" || len(a.ResourceName) > 255:
		return bad("resource_name", "must be 1 to 255 characters")
	case a.ResourceType == Cluster && a.ResourceName != ClusterName:
		return bad("resource_name", "the cluster resource is named %q", ClusterName)
	case !slices.Contains(PatternTypes, a.PatternType):
		return bad("pattern_type", "must be one of %s", join(PatternTypes))
	case a.ResourceName == "*" && a.PatternType != Literal:
		return bad("pattern_type", "the wildcard name * is literal")
	case !slices.Contains(Operations, a.Operation):
		return bad("operation", "must be one of %s", join(Operations))
	case !validFor(a.ResourceType, a.Operation):
		return bad("operation", "%s does not apply to %s resources", a.Operation, a.ResourceType)
	case !slices.Contains(Permissions, a.Permission):
		return bad("permission", "must be one of %s", join(Permissions))
	case a.Host != "*" && !validHost(a.Host):
		return bad("host", "must be *, an IP address or a CIDR block such as 10.0.0.0/8")
	}
	if p, err := netip.ParsePrefix(a.Host); err == nil {
		a.Host = p.Masked().String() // one spelling per block, so identical ACLs compare equal
	}
	return nil
}

// validHost: an IP address or a CIDR block.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	_, err := netip.ParsePrefix(h)
	return err == nil
}

// validFor: the operations Kafka defines for each resource type.
func validFor(rt ResourceType, op Operation) bool {
	if op == All {
		return true
	}
	switch rt {
	case Topic:
		return slices.Contains([]Operation{Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs}, op)
	case Group:
		return slices.Contains([]Operation{Read, Delete, Describe}, op)
	case Cluster:
		return slices.Contains([]Operation{Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite}, op)
	case TransactionalID:
		return slices.Contains([]Operation{Write, Describe}, op)
	}
	return false
}

func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// nameMatches reports whether the ACL's resource pattern covers name.
func (a *ACL) nameMatches(name string) bool {
	switch a.PatternType {
	case Literal:
		return a.ResourceName == name || a.ResourceName == "*"
	case Prefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

// hostMatches reports whether the client's address is the ACL's host or
// falls in its CIDR block.
func (a *ACL) hostMatches(host string) bool {
	if a.Host == "*" || a.Host == host {
		return true
	}
	if !strings.Contains(a.Host, "/") {
		return false
	}
	p, err := netip.ParsePrefix(a.Host)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && p.Contains(addr.Unmap())
}

// Grants is everything that decides what one principal may do in one
// virtual cluster.
type Grants struct {
	OrgAdmin bool     // an org admin service account: admin on every cluster of its organisation
	Roles    []string // its role bindings on the cluster
	ACLs     []ACL    // the cluster's ACLs naming the principal or User:*
}

// roleGrants lists what each developer role may do; admin may do
// everything. developer-write may also use idempotent producers (cluster
// IDEMPOTENT_WRITE) and transactional ids, which producers need.
var roleGrants = map[string]map[ResourceType][]Operation{
	RoleDeveloperRead: {
		Topic: {Read, Describe, DescribeConfigs},
		Group: {Read, Describe},
	},
	RoleDeveloperWrite: {
		Topic:           {Read, Write, Describe, DescribeConfigs},
		Group:           {Read, Describe},
		Cluster:         {IdempotentWrite},
		TransactionalID: {Write, Describe},
	},
}

// RoleAllows reports whether role grants op on resources of type rt.
func RoleAllows(role string, rt ResourceType, op Operation) bool {
	if role == RoleAdmin {
		return true
	}
	return slices.Contains(roleGrants[role][rt], op)
}

// implied lists the operations whose ALLOW also allows op.
func implied(op Operation) []Operation {
	switch op {
	case Describe:
		return []Operation{Describe, Read, Write, Delete, Alter, All}
	case DescribeConfigs:
		return []Operation{DescribeConfigs, AlterConfigs, All}
	}
	return []Operation{op, All}
}

// Allowed decides whether the principal of g, connected from host, may
// perform op on the resource of type rt named name (see the package doc).
// g.ACLs must already be limited to the principal (and User:*).
func (g *Grants) Allowed(host string, rt ResourceType, name string, op Operation) bool {
	for i := range g.ACLs {
		a := &g.ACLs[i]
		if a.Permission == Deny && a.ResourceType == rt && (a.Operation == op || a.Operation == All) && a.hostMatches(host) && a.nameMatches(name) {
			return false
		}
	}
	if g.OrgAdmin {
		return true
	}
	for _, r := range g.Roles {
		if RoleAllows(r, rt, op) {
			return true
		}
	}
	ops := implied(op)
	for i := range g.ACLs {
		a := &g.ACLs[i]
		if a.Permission == Allow && a.ResourceType == rt && slices.Contains(ops, a.Operation) && a.hostMatches(host) && a.nameMatches(name) {
			return true
		}
	}
	return false
}

// AllowedAny reports whether op is allowed on at least one resource of
// type rt, ignoring DENY ACLs on particular names: Kafka's test for an
// idempotent producer, which may initialise if it may write to any topic.
func (g *Grants) AllowedAny(host string, rt ResourceType, op Operation) bool {
	if g.OrgAdmin {
		return true
	}
	for _, r := range g.Roles {
		if RoleAllows(r, rt, op) {
			return true
		}
	}
	for i := range g.ACLs {
		a := &g.ACLs[i]
		if a.Permission == Allow && a.ResourceType == rt && (a.Operation == op || a.Operation == All) && a.hostMatches(host) {
			return true
		}
	}
	return false
}

// Filter selects ACLs, as DescribeAcls and DeleteAcls do. Empty fields
// (nil for names) match anything. PatternType may also be "any" (every
// pattern type, the name compared exactly) or "match" (every ACL that
// would apply to a resource of that name: literal equal, literal "*", and
// prefixed ones the name starts with).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  string // "", "any", "match", "literal", "prefixed"
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether the filter selects a.
func (f *Filter) Matches(a *ACL) bool {
	if f.ResourceType != "" && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != "" && f.Operation != a.Operation {
		return false
	}
	if f.Permission != "" && f.Permission != a.Permission {
		return false
	}
	switch f.PatternType {
	case "", "any":
		return f.ResourceName == nil || *f.ResourceName == a.ResourceName
	case "match":
		return f.ResourceName == nil || a.nameMatches(*f.ResourceName)
	default:
		return string(a.PatternType) == f.PatternType && (f.ResourceName == nil || *f.ResourceName == a.ResourceName)
	}
}

// Kafka wire codes (kmsg) and the names above.

var (
	kafkaResourceTypes = map[kmsg.ACLResourceType]ResourceType{
		kmsg.ACLResourceTypeTopic: Topic, kmsg.ACLResourceTypeGroup: Group,
		kmsg.ACLResourceTypeCluster: Cluster, kmsg.ACLResourceTypeTransactionalId: TransactionalID,
	}
	kafkaOperations = map[kmsg.ACLOperation]Operation{
		kmsg.ACLOperationAll: All, kmsg.ACLOperationRead: Read, kmsg.ACLOperationWrite: Write,
		kmsg.ACLOperationCreate: Create, kmsg.ACLOperationDelete: Delete, kmsg.ACLOperationAlter: Alter,
		kmsg.ACLOperationDescribe: Describe, kmsg.ACLOperationClusterAction: ClusterAction,
		kmsg.ACLOperationDescribeConfigs: DescribeConfigs, kmsg.ACLOperationAlterConfigs: AlterConfigs,
		kmsg.ACLOperationIdempotentWrite: IdempotentWrite,
	}
	kafkaPatternTypes = map[kmsg.ACLResourcePatternType]PatternType{
		kmsg.ACLResourcePatternTypeLiteral: Literal, kmsg.ACLResourcePatternTypePrefixed: Prefixed,
	}
	kafkaPermissions = map[kmsg.ACLPermissionType]Permission{
		kmsg.ACLPermissionTypeAllow: Allow, kmsg.ACLPermissionTypeDeny: Deny,
	}
)

// FromKafka converts the fields of a Kafka ACL (CreateAcls creation); ok
// is false when one of them is not a concrete value Eddy supports.
func FromKafka(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) (ResourceType, PatternType, Operation, Permission, bool) {
	r, ok1 := kafkaResourceTypes[rt]
	p, ok2 := kafkaPatternTypes[pt]
	o, ok3 := kafkaOperations[op]
	m, ok4 := kafkaPermissions[perm]
	return r, p, o, m, ok1 && ok2 && ok3 && ok4
}

// FilterFromKafka converts a Kafka ACL filter (DescribeAcls, DeleteAcls);
// ok is false when a field holds an unknown value. A filter naming a
// resource type Eddy does not have (delegation tokens, users) is valid
// but matches nothing: none is set, as Kafka answers such filters with
// nothing.
func FilterFromKafka(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) (f Filter, none, ok bool) {
	f.ResourceName, f.Principal, f.Host = name, principal, host
	switch rt {
	case kmsg.ACLResourceTypeAny:
	case kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
		none = true
	default:
		r, known := kafkaResourceTypes[rt]
		if !known {
			return f, false, false
		}
		f.ResourceType = r
	}
	switch pt {
	case kmsg.ACLResourcePatternTypeAny:
		f.PatternType = "any"
	case kmsg.ACLResourcePatternTypeMatch:
		f.PatternType = "match"
	default:
		p, known := kafkaPatternTypes[pt]
		if !known {
			return f, false, false
		}
		f.PatternType = string(p)
	}
	switch op {
	case kmsg.ACLOperationAny:
	default:
		o, known := kafkaOperations[op]
		if !known {
			if op == kmsg.ACLOperationCreateTokens || op == kmsg.ACLOperationDescribeTokens {
				return f, true, true
			}
			return f, false, false
		}
		f.Operation = o
	}
	switch perm {
	case kmsg.ACLPermissionTypeAny:
	default:
		m, known := kafkaPermissions[perm]
		if !known {
			return f, false, false
		}
		f.Permission = m
	}
	return f, none, true
}

// Kafka returns the kmsg codes of a.
func (a *ACL) Kafka() (kmsg.ACLResourceType, kmsg.ACLResourcePatternType, kmsg.ACLOperation, kmsg.ACLPermissionType) {
	return key(kafkaResourceTypes, a.ResourceType), key(kafkaPatternTypes, a.PatternType),
		key(kafkaOperations, a.Operation), key(kafkaPermissions, a.Permission)
}

func key[K comparable, V comparable](m map[K]V, v V) K {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	var zero K
	return zero
}
