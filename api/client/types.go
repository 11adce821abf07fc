package client

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/internal/limits"
)

// The wire types of the REST API (api/openapi.yaml). The server encodes
// exactly these, so client and server cannot drift apart.

// Organization is a tenant.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateOrganizationRequest is the body of POST /v1/organizations.
type CreateOrganizationRequest struct {
	Name string `json:"name"`
}

// CreatedOrganization answers POST /v1/organizations: the organisation,
// its admin service account and that account's first API key, whose
// secret is shown this once.
type CreatedOrganization struct {
	Organization        Organization   `json:"organization"`
	AdminServiceAccount ServiceAccount `json:"admin_service_account"`
	AdminAPIKey         APIKey         `json:"admin_api_key"`
}

// Cluster statuses.
const (
	StatusProvisioning = "provisioning"
	StatusReady        = "ready"
)

// Cluster is a virtual Kafka cluster.
type Cluster struct {
	ID     string        `json:"id"`
	Name   string        `json:"name"`
	Status string        `json:"status"`
	Limits limits.Limits `json:"limits"`
	// Plan is the organisation's plan, Ceilings its ceilings, and
	// EffectiveLimits what the cluster is held to: each limit the lower
	// of Limits and Ceilings.
	Plan                string            `json:"plan"`
	Ceilings            limits.Limits     `json:"ceilings"`
	EffectiveLimits     limits.Limits     `json:"effective_limits"`
	DefaultTopicConfigs map[string]string `json:"default_topic_configs"`
	// BrokerConfigs are the Kafka broker configs the cluster has set
	// (num.partitions, auto.create.topics.enable, log.retention.ms, ...);
	// the others have their defaults.
	BrokerConfigs map[string]string `json:"broker_configs"`
	// AllowedCIDRs is the cluster's IP allow-list: the addresses its Kafka
	// clients and its REST sub-resources are reached from (empty: any).
	AllowedCIDRs   []string      `json:"allowed_cidrs"`
	PartitionsUsed int32         `json:"partitions_used"`
	Kafka          KafkaEndpoint `json:"kafka"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	// ETag is the response's ETag header: pass it to UpdateCluster.
	ETag string `json:"-"`
}

// KafkaEndpoint is what a Kafka client needs to connect.
type KafkaEndpoint struct {
	BootstrapServers string        `json:"bootstrap_servers"`
	SASLMechanisms   []string      `json:"sasl_mechanisms"`
	OAuth            OAuthSettings `json:"oauth"`
}

// OAuthSettings are the OAUTHBEARER/OIDC settings of a cluster: with
// sasl.oauthbearer.method=oidc a client fetches tokens from TokenEndpoint
// with an API key as client id and secret.
type OAuthSettings struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
	Audience      string `json:"audience"`
}

// CreateClusterRequest is the body of POST /v1/clusters. Limits left
// zero (or nil) get their defaults (limits.Defaults).
type CreateClusterRequest struct {
	Name                string            `json:"name"`
	Limits              *limits.Limits    `json:"limits,omitempty"`
	DefaultTopicConfigs map[string]string `json:"default_topic_configs,omitempty"`
	BrokerConfigs       map[string]string `json:"broker_configs,omitempty"`
	AllowedCIDRs        []string          `json:"allowed_cidrs,omitempty"`
}

// UpdateClusterRequest is the body of PATCH /v1/clusters/{id}; nil fields,
// and limits left zero, are left as they are.
type UpdateClusterRequest struct {
	Name                *string            `json:"name,omitempty"`
	Limits              *limits.Limits     `json:"limits,omitempty"`
	DefaultTopicConfigs *map[string]string `json:"default_topic_configs,omitempty"`
	// BrokerConfigs replaces the whole set: configs left out return to
	// their defaults.
	BrokerConfigs *map[string]string `json:"broker_configs,omitempty"`
	// AllowedCIDRs replaces the allow-list; an empty list removes it.
	AllowedCIDRs *[]string `json:"allowed_cidrs,omitempty"`
}

// Topic is a Kafka topic of a cluster.
type Topic struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	PartitionCount int32             `json:"partition_count"`
	Configs        map[string]string `json:"configs"`
	Partitions     []Partition       `json:"partitions"`
	CreatedAt      time.Time         `json:"created_at"`
	ETag           string            `json:"-"`
}

// Partition is one partition; Leader is nil while unassigned.
type Partition struct {
	Partition     int32  `json:"partition"`
	Leader        *int32 `json:"leader"`
	LeaderEpoch   int32  `json:"leader_epoch"`
	HighWatermark int64  `json:"high_watermark"`
}

// CreateTopicRequest is the body of POST /v1/clusters/{id}/topics.
// Configs are merged over the cluster's default topic configs.
type CreateTopicRequest struct {
	Name       string            `json:"name"`
	Partitions *int32            `json:"partitions,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// UpdateTopicRequest is the body of PATCH .../topics/{name}: Partitions
// can only grow; Configs replaces the explicit configs.
type UpdateTopicRequest struct {
	Partitions *int32             `json:"partitions,omitempty"`
	Configs    *map[string]string `json:"configs,omitempty"`
}

// ServiceAccount is a non-human principal.
type ServiceAccount struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	OrgAdmin    bool      `json:"org_admin"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateServiceAccountRequest is the body of POST /v1/service-accounts.
type CreateServiceAccountRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// UpdateServiceAccountRequest is the body of PATCH
// /v1/service-accounts/{id}; nil fields are left as they are.
type UpdateServiceAccountRequest struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// APIKey is a credential of a service account; Secret is set only in the
// response that created it. ClusterID "" means the whole organisation.
type APIKey struct {
	ID               string    `json:"id"`
	ServiceAccountID string    `json:"service_account_id"`
	ClusterID        string    `json:"cluster_id,omitempty"`
	Description      string    `json:"description"`
	Secret           string    `json:"secret,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// CreateAPIKeyRequest is the body of POST /v1/api-keys.
type CreateAPIKeyRequest struct {
	ServiceAccountID string `json:"service_account_id"`
	ClusterID        string `json:"cluster_id,omitempty"`
	Description      string `json:"description,omitempty"`
}

// Roles a service account can hold on a cluster.
const (
	RoleAdmin          = "admin"
	RoleDeveloperRead  = "developer-read"
	RoleDeveloperWrite = "developer-write"
)

// RoleBinding grants a role on a cluster.
type RoleBinding struct {
	ID               string    `json:"id"`
	ClusterID        string    `json:"cluster_id"`
	ServiceAccountID string    `json:"service_account_id"`
	Role             string    `json:"role"`
	CreatedAt        time.Time `json:"created_at"`
}

// CreateRoleBindingRequest is the body of POST .../role-bindings.
type CreateRoleBindingRequest struct {
	ServiceAccountID string `json:"service_account_id"`
	Role             string `json:"role"`
}

// ACL values: Kafka's names in lower case.
const (
	ACLResourceTopic           = "topic"
	ACLResourceGroup           = "group"
	ACLResourceCluster         = "cluster"
	ACLResourceTransactionalID = "transactional_id"
	// ACLClusterName is the name of the (one) cluster resource.
	ACLClusterName = "kafka-cluster"

	ACLPatternLiteral  = "literal"
	ACLPatternPrefixed = "prefixed"

	ACLAllow = "allow"
	ACLDeny  = "deny"
	// Operations: all, read, write, create, delete, alter, describe,
	// cluster_action, describe_configs, alter_configs, idempotent_write.
)

// ACL is a Kafka ACL of a cluster: Permission (allow or deny) of
// Operation on the resources of ResourceType that ResourceName names
// (exactly, or as a prefix with pattern type prefixed; a literal "*" names
// them all), for Principal ("User:<service-account-id>" or "User:*")
// connecting from Host ("*" or an IP address). A deny wins over every
// grant, roles included. ACLs cannot be changed: delete and create.
type ACL struct {
	ID           string    `json:"id"`
	ClusterID    string    `json:"cluster_id"`
	Principal    string    `json:"principal"`
	ResourceType string    `json:"resource_type"`
	ResourceName string    `json:"resource_name"`
	PatternType  string    `json:"pattern_type"`
	Operation    string    `json:"operation"`
	Permission   string    `json:"permission"`
	Host         string    `json:"host"`
	CreatedAt    time.Time `json:"created_at"`
}

// CreateACLRequest is the body of POST .../acls. PatternType defaults to
// literal and Host to "*".
type CreateACLRequest struct {
	Principal    string `json:"principal"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type,omitempty"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
	Host         string `json:"host,omitempty"`
}

// List is one page of a listing; NextCursor is "" on the last page.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Token answers the token endpoint (RFC 6749 section 5.1).
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 7807 error response; it is the error type every
// client method returns for an HTTP error.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	for _, e := range p.Errors {
		s += fmt.Sprintf("; %s: %s", e.Field, e.Message)
	}
	return s
}

// Problem type URIs. They are stable: clients may switch on them.
const (
	ProblemBase                = "https://eddy.dev/problems/"
	ProblemValidation          = ProblemBase + "validation"
	ProblemMalformed           = ProblemBase + "malformed-request"
	ProblemUnauthorized        = ProblemBase + "unauthorized"
	ProblemForbidden           = ProblemBase + "forbidden"
	ProblemNotFound            = ProblemBase + "not-found"
	ProblemMethodNotAllowed    = ProblemBase + "method-not-allowed"
	ProblemConflict            = ProblemBase + "conflict"
	ProblemPreconditionFailed  = ProblemBase + "precondition-failed"
	ProblemTooLarge            = ProblemBase + "payload-too-large"
	ProblemUnsupportedMedia    = ProblemBase + "unsupported-media-type"
	ProblemLimitExceeded       = ProblemBase + "limit-exceeded"
	ProblemInvalidChange       = ProblemBase + "invalid-change"
	ProblemIdempotencyReuse    = ProblemBase + "idempotency-key-reuse"
	ProblemIdempotencyInFlight = ProblemBase + "idempotency-key-in-flight"
	ProblemInternal            = ProblemBase + "internal"
	ProblemUnavailable         = ProblemBase + "unavailable"
	ProblemTooManyRequests     = ProblemBase + "too-many-requests"
)

// AuditEntry is one row of an organisation's audit log.
type AuditEntry struct {
	ID           string    `json:"id"`
	At           time.Time `json:"at"`
	ClusterID    string    `json:"cluster_id,omitempty"`
	Principal    string    `json:"principal"`
	Source       string    `json:"source,omitempty"`
	Channel      string    `json:"channel"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceName string    `json:"resource_name,omitempty"`
	Result       string    `json:"result"`
	Detail       string    `json:"detail,omitempty"`
	Count        int       `json:"count"`
}

// AuditFilter narrows an audit-log listing; empty fields match all.
type AuditFilter struct {
	ClusterID, Principal, Action, Result string
	Since, Until                         time.Time
}

// IdentityProvider is an OIDC issuer an organisation trusts (identity
// federation).
type IdentityProvider struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Issuer    string    `json:"issuer"`
	JWKSURL   string    `json:"jwks_url"`
	Audience  string    `json:"audience"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateIdentityProviderRequest is the body of POST /v1/identity-providers.
type CreateIdentityProviderRequest struct {
	Name     string `json:"name"`
	Issuer   string `json:"issuer"`
	JWKSURL  string `json:"jwks_url"`
	Audience string `json:"audience"`
}

// IdentityPool admits a provider's tokens whose claims pass Filter and
// FilterExpression (each when set) as a service account in a cluster.
type IdentityPool struct {
	ID               string              `json:"id"`
	Name             string              `json:"name"`
	ProviderID       string              `json:"provider_id"`
	ClusterID        string              `json:"cluster_id"`
	ServiceAccountID string              `json:"service_account_id"`
	Filter           map[string][]string `json:"filter,omitempty"`
	FilterExpression string              `json:"filter_expression,omitempty"`
	CreatedAt        time.Time           `json:"created_at"`
}

// CreateIdentityPoolRequest is the body of POST /v1/identity-pools.
type CreateIdentityPoolRequest struct {
	Name             string              `json:"name"`
	ProviderID       string              `json:"provider_id"`
	ClusterID        string              `json:"cluster_id"`
	ServiceAccountID string              `json:"service_account_id"`
	Filter           map[string][]string `json:"filter,omitempty"`
	// FilterExpression is a filter expression on the token's claims, e.g.
	// `"admins" in claims.groups && claims.email.endsWith("@corp.example")`
	// (internal/federation documents the language).
	FilterExpression string `json:"filter_expression,omitempty"`
}

// IdentityPoolHeader names the identity pool a bearer token of an
// organisation's own identity provider is for.
const IdentityPoolHeader = "Eddy-Identity-Pool"

// QuotaUsage is how close a cluster is to its limits now
// (GET /v1/clusters/{id}/quota-usage).
type QuotaUsage struct {
	ClusterID string    `json:"cluster_id"`
	AsOf      time.Time `json:"as_of"`
	// Limits are the cluster's effective limits (Cluster.EffectiveLimits).
	Limits limits.Limits `json:"limits"`
	// Rates and connections summed over the live brokers' last load
	// reports; BrokersReporting says how many reported.
	BytesInPerSec    float64 `json:"bytes_in_per_sec"`
	BytesOutPerSec   float64 `json:"bytes_out_per_sec"`
	RequestsPerSec   float64 `json:"requests_per_sec"`
	Connections      int     `json:"connections"`
	BrokersReporting int     `json:"brokers_reporting"`
	// What the cluster holds.
	Partitions  int32 `json:"partitions"`
	Topics      int32 `json:"topics"`
	Groups      int32 `json:"groups"`
	StoredBytes int64 `json:"stored_bytes"`
	// StorageSampledAt is when StoredBytes was sampled (absent: never).
	StorageSampledAt *time.Time `json:"storage_sampled_at,omitempty"`
	// Throttling: the throttle time handed to the cluster's clients per
	// second now, and the last time a live broker throttled one within the
	// last hour (absent: none did).
	ThrottleSecondsPerSec float64    `json:"throttle_seconds_per_sec"`
	LastThrottledAt       *time.Time `json:"last_throttled_at,omitempty"`
}
