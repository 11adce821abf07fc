// Package client is the typed Go client of Eddy's REST API
// (api/openapi.yaml). The CLI, the Terraform provider and the tests use
// it; nothing else should speak the API by hand.
//
// Every method returns a *Problem for an HTTP error, so callers can test
// the status or type (IsNotFound, IsConflict). A Client is safe for
// concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one Eddy control plane.
type Client struct {
	base string
	hc   *http.Client
	auth func(*http.Request)
	ua   string
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey authenticates with an API key (HTTP basic).
func WithAPIKey(id, secret string) Option {
	return func(c *Client) { c.auth = func(r *http.Request) { r.SetBasicAuth(id, secret) } }
}

// WithToken authenticates with a bearer token: a JWT from the token
// endpoint, or the operator's admin token.
func WithToken(token string) Option {
	return func(c *Client) {
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
}

// WithPoolToken authenticates with a token of the organisation's own
// identity provider, for identity pool pool (identity federation).
func WithPoolToken(pool, token string) Option {
	return func(c *Client) {
		c.auth = func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set(IdentityPoolHeader, pool)
		}
	}
}

// WithHTTPClient replaces http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:8080).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: http.DefaultClient, auth: func(*http.Request) {}, ua: "eddy-client"}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CallOption adjusts one request.
type CallOption func(*http.Request)

// IdempotencyKey makes a POST safe to retry: repeats with the same key
// return the first response and create nothing.
func IdempotencyKey(key string) CallOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// IfMatch makes an update or delete conditional on the resource's ETag.
func IfMatch(etag string) CallOption {
	return func(r *http.Request) {
		if etag != "" {
			r.Header.Set("If-Match", etag)
		}
	}
}

// ListOptions page through a listing.
type ListOptions struct {
	Limit  int
	Cursor string
}

func (o ListOptions) query() string {
	v := url.Values{}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		v.Set("cursor", o.Cursor)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// do sends a JSON request and decodes a JSON response into out (if not
// nil). It returns the response headers.
func (c *Client) do(ctx context.Context, method, path string, in, out any, opts ...CallOption) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	c.auth(req)
	for _, o := range opts {
		o(req)
	}
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) (http.Header, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.Header, err
	}
	if resp.StatusCode >= 400 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if len(b) > 0 && json.Unmarshal(b, p) != nil {
			p.Detail = strings.TrimSpace(string(b))
		}
		// The token endpoint answers in OAuth's format (RFC 6749 5.2).
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if p.Type == "" && json.Unmarshal(b, &oe) == nil && oe.Error != "" {
			p.Detail = oe.Error
			if oe.Description != "" {
				p.Detail += ": " + oe.Description
			}
		}
		p.Status = resp.StatusCode
		return resp.Header, p
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("client: decode %s %s: %w", req.Method, req.URL.Path, err)
		}
	}
	return resp.Header, nil
}

// StatusOf returns the HTTP status of a *Problem error, or 0.
func StatusOf(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports a 409.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

func esc(s string) string { return url.PathEscape(s) }

// Organisations (operator credential; an org admin may read its own).

func (c *Client) CreateOrganization(ctx context.Context, req CreateOrganizationRequest, opts ...CallOption) (CreatedOrganization, error) {
	var out CreatedOrganization
	_, err := c.do(ctx, http.MethodPost, "/v1/organizations", req, &out, opts...)
	return out, err
}

func (c *Client) ListOrganizations(ctx context.Context, o ListOptions) (List[Organization], error) {
	var out List[Organization]
	_, err := c.do(ctx, http.MethodGet, "/v1/organizations"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetOrganization(ctx context.Context, id string) (Organization, error) {
	var out Organization
	_, err := c.do(ctx, http.MethodGet, "/v1/organizations/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) DeleteOrganization(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/organizations/"+esc(id), nil, nil)
	return err
}

// Clusters.

func (c *Client) CreateCluster(ctx context.Context, req CreateClusterRequest, opts ...CallOption) (Cluster, error) {
	var out Cluster
	h, err := c.do(ctx, http.MethodPost, "/v1/clusters", req, &out, opts...)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) ListClusters(ctx context.Context, o ListOptions) (List[Cluster], error) {
	var out List[Cluster]
	_, err := c.do(ctx, http.MethodGet, "/v1/clusters"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetCluster(ctx context.Context, id string) (Cluster, error) {
	var out Cluster
	h, err := c.do(ctx, http.MethodGet, "/v1/clusters/"+esc(id), nil, &out)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) UpdateCluster(ctx context.Context, id string, req UpdateClusterRequest, opts ...CallOption) (Cluster, error) {
	var out Cluster
	h, err := c.do(ctx, http.MethodPatch, "/v1/clusters/"+esc(id), req, &out, opts...)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) DeleteCluster(ctx context.Context, id string, opts ...CallOption) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/clusters/"+esc(id), nil, nil, opts...)
	return err
}

// WaitClusterReady polls the cluster until it is ready or ctx ends,
// calling progress (if not nil) after every poll.
func (c *Client) WaitClusterReady(ctx context.Context, id string, progress func(Cluster)) (Cluster, error) {
	for {
		cl, err := c.GetCluster(ctx, id)
		if err != nil {
			return cl, err
		}
		if progress != nil {
			progress(cl)
		}
		if cl.Status == StatusReady {
			return cl, nil
		}
		select {
		case <-ctx.Done():
			return cl, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Topics.

func topicsPath(cluster string) string { return "/v1/clusters/" + esc(cluster) + "/topics" }

func (c *Client) CreateTopic(ctx context.Context, cluster string, req CreateTopicRequest, opts ...CallOption) (Topic, error) {
	var out Topic
	h, err := c.do(ctx, http.MethodPost, topicsPath(cluster), req, &out, opts...)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) ListTopics(ctx context.Context, cluster string, o ListOptions) (List[Topic], error) {
	var out List[Topic]
	_, err := c.do(ctx, http.MethodGet, topicsPath(cluster)+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetTopic(ctx context.Context, cluster, name string) (Topic, error) {
	var out Topic
	h, err := c.do(ctx, http.MethodGet, topicsPath(cluster)+"/"+esc(name), nil, &out)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) UpdateTopic(ctx context.Context, cluster, name string, req UpdateTopicRequest, opts ...CallOption) (Topic, error) {
	var out Topic
	h, err := c.do(ctx, http.MethodPatch, topicsPath(cluster)+"/"+esc(name), req, &out, opts...)
	out.ETag = h.Get("ETag")
	return out, err
}

func (c *Client) DeleteTopic(ctx context.Context, cluster, name string, opts ...CallOption) error {
	_, err := c.do(ctx, http.MethodDelete, topicsPath(cluster)+"/"+esc(name), nil, nil, opts...)
	return err
}

// Service accounts.

func (c *Client) CreateServiceAccount(ctx context.Context, req CreateServiceAccountRequest, opts ...CallOption) (ServiceAccount, error) {
	var out ServiceAccount
	_, err := c.do(ctx, http.MethodPost, "/v1/service-accounts", req, &out, opts...)
	return out, err
}

func (c *Client) ListServiceAccounts(ctx context.Context, o ListOptions) (List[ServiceAccount], error) {
	var out List[ServiceAccount]
	_, err := c.do(ctx, http.MethodGet, "/v1/service-accounts"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetServiceAccount(ctx context.Context, id string) (ServiceAccount, error) {
	var out ServiceAccount
	_, err := c.do(ctx, http.MethodGet, "/v1/service-accounts/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) UpdateServiceAccount(ctx context.Context, id string, req UpdateServiceAccountRequest) (ServiceAccount, error) {
	var out ServiceAccount
	_, err := c.do(ctx, http.MethodPatch, "/v1/service-accounts/"+esc(id), req, &out)
	return out, err
}

func (c *Client) DeleteServiceAccount(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/service-accounts/"+esc(id), nil, nil)
	return err
}

// API keys. Rotate a key by creating a new one, switching clients over,
// then deleting the old one: both are valid in between.

func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKeyRequest, opts ...CallOption) (APIKey, error) {
	var out APIKey
	_, err := c.do(ctx, http.MethodPost, "/v1/api-keys", req, &out, opts...)
	return out, err
}

func (c *Client) ListAPIKeys(ctx context.Context, o ListOptions) (List[APIKey], error) {
	var out List[APIKey]
	_, err := c.do(ctx, http.MethodGet, "/v1/api-keys"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	var out APIKey
	_, err := c.do(ctx, http.MethodGet, "/v1/api-keys/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/api-keys/"+esc(id), nil, nil)
	return err
}

// Role bindings.

func bindingsPath(cluster string) string { return "/v1/clusters/" + esc(cluster) + "/role-bindings" }

func (c *Client) CreateRoleBinding(ctx context.Context, cluster string, req CreateRoleBindingRequest, opts ...CallOption) (RoleBinding, error) {
	var out RoleBinding
	_, err := c.do(ctx, http.MethodPost, bindingsPath(cluster), req, &out, opts...)
	return out, err
}

func (c *Client) ListRoleBindings(ctx context.Context, cluster string, o ListOptions) (List[RoleBinding], error) {
	var out List[RoleBinding]
	_, err := c.do(ctx, http.MethodGet, bindingsPath(cluster)+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetRoleBinding(ctx context.Context, cluster, id string) (RoleBinding, error) {
	var out RoleBinding
	_, err := c.do(ctx, http.MethodGet, bindingsPath(cluster)+"/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) DeleteRoleBinding(ctx context.Context, cluster, id string) error {
	_, err := c.do(ctx, http.MethodDelete, bindingsPath(cluster)+"/"+esc(id), nil, nil)
	return err
}

// ACLs.

func aclsPath(cluster string) string { return "/v1/clusters/" + esc(cluster) + "/acls" }

func (c *Client) CreateACL(ctx context.Context, cluster string, req CreateACLRequest, opts ...CallOption) (ACL, error) {
	var out ACL
	_, err := c.do(ctx, http.MethodPost, aclsPath(cluster), req, &out, opts...)
	return out, err
}

func (c *Client) GetACL(ctx context.Context, cluster, id string) (ACL, error) {
	var out ACL
	_, err := c.do(ctx, http.MethodGet, aclsPath(cluster)+"/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) ListACLs(ctx context.Context, cluster string, o ListOptions) (List[ACL], error) {
	var out List[ACL]
	_, err := c.do(ctx, http.MethodGet, aclsPath(cluster)+o.query(), nil, &out)
	return out, err
}

func (c *Client) DeleteACL(ctx context.Context, cluster, id string) error {
	_, err := c.do(ctx, http.MethodDelete, aclsPath(cluster)+"/"+esc(id), nil, nil)
	return err
}

// Token exchanges an API key for a JWT at the token endpoint
// (client_credentials grant, credentials in HTTP basic).
func (c *Client) Token(ctx context.Context, keyID, secret string) (Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(keyID), url.QueryEscape(secret))
	var out Token
	_, err = c.send(req, &out)
	return out, err
}

// ListAuditLog lists an organisation's audit log, newest first; org ""
// is the caller's own.
func (c *Client) ListAuditLog(ctx context.Context, org string, f AuditFilter, o ListOptions) (List[AuditEntry], error) {
	v := url.Values{}
	for k, s := range map[string]string{"cluster_id": f.ClusterID, "principal": f.Principal, "action": f.Action, "result": f.Result} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		v.Set("cursor", o.Cursor)
	}
	path := "/v1/audit-log"
	if org != "" {
		path = "/v1/organizations/" + esc(org) + "/audit-log"
	}
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out List[AuditEntry]
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

func (c *Client) CreateIdentityProvider(ctx context.Context, req CreateIdentityProviderRequest, opts ...CallOption) (IdentityProvider, error) {
	var out IdentityProvider
	_, err := c.do(ctx, http.MethodPost, "/v1/identity-providers", req, &out, opts...)
	return out, err
}

func (c *Client) ListIdentityProviders(ctx context.Context, o ListOptions) (List[IdentityProvider], error) {
	var out List[IdentityProvider]
	_, err := c.do(ctx, http.MethodGet, "/v1/identity-providers"+o.query(), nil, &out)
	return out, err
}

func (c *Client) DeleteIdentityProvider(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/identity-providers/"+esc(id), nil, nil)
	return err
}

func (c *Client) CreateIdentityPool(ctx context.Context, req CreateIdentityPoolRequest, opts ...CallOption) (IdentityPool, error) {
	var out IdentityPool
	_, err := c.do(ctx, http.MethodPost, "/v1/identity-pools", req, &out, opts...)
	return out, err
}

func (c *Client) ListIdentityPools(ctx context.Context, o ListOptions) (List[IdentityPool], error) {
	var out List[IdentityPool]
	_, err := c.do(ctx, http.MethodGet, "/v1/identity-pools"+o.query(), nil, &out)
	return out, err
}

func (c *Client) DeleteIdentityPool(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/identity-pools/"+esc(id), nil, nil)
	return err
}

func (c *Client) GetIdentityProvider(ctx context.Context, id string) (IdentityProvider, error) {
	var out IdentityProvider
	_, err := c.do(ctx, http.MethodGet, "/v1/identity-providers/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) GetIdentityPool(ctx context.Context, id string) (IdentityPool, error) {
	var out IdentityPool
	_, err := c.do(ctx, http.MethodGet, "/v1/identity-pools/"+esc(id), nil, &out)
	return out, err
}
