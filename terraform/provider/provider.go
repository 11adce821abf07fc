// Package provider is Eddy's Terraform provider (terraform-plugin-framework,
// protocol 6). It manages what a tenant owns — virtual clusters, topics,
// service accounts, API keys, role bindings and Kafka ACLs — through the
// REST API and nothing else: every call goes through api/client, with an
// organisation admin's API key (HTTP basic).
//
// Contracts every resource keeps:
//   - Read reflects the server, so changes made outside Terraform (over
//     REST or the Kafka API) show as drift in the next plan; a resource
//     that is gone is removed from state and planned for creation.
//   - Every resource can be imported; the import id is documented on the
//     resource (docs/resources).
//   - Anything that needs a cluster waits, within its create timeout, for
//     the cluster to be ready.
//   - Names, partition counts and topic configs are validated at plan time
//     with the same rules the server applies; API errors (RFC 7807
//     problems) become diagnostics naming the field and the request id.
//
// New returns a fresh provider for each call of the returned function, as
// the plugin server expects; providers share nothing.
package provider

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

//go:generate go run ../docgen -terraform-dir .. -docs ../docs

// Environment variables the provider reads when its block leaves a
// setting out.
const (
	EnvEndpoint  = "EDDY_ENDPOINT"
	EnvAPIKey    = "EDDY_API_KEY"
	EnvAPISecret = "EDDY_API_SECRET"
)

var _ provider.Provider = &eddyProvider{}

type eddyProvider struct {
	version string
}

// New returns a factory of the provider, as providerserver wants it.
// version is reported to Terraform and sent in the User-Agent.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &eddyProvider{version: version} }
}

type providerModel struct {
	Endpoint       types.String `tfsdk:"endpoint"`
	APIKey         types.String `tfsdk:"api_key"`
	APISecret      types.String `tfsdk:"api_secret"`
	RequestTimeout types.String `tfsdk:"request_timeout"`
}

func (p *eddyProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "eddy"
	resp.Version = p.version
}

func (p *eddyProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages an Eddy organisation's streaming resources — virtual Kafka clusters, topics, " +
			"service accounts, API keys, role bindings and ACLs — through Eddy's REST API. " +
			"Authenticate with an API key of an organisation admin service account (the one the organisation was created with, or another admin).",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "Base URL of the Eddy REST API, e.g. `https://api.eddy.example` or `http://127.0.0.1:8080`. Default: the `" + EnvEndpoint + "` environment variable.",
				Optional:            true,
			},
			"api_key": schema.StringAttribute{
				MarkdownDescription: "Id of an organisation admin's API key (`key-…`). Default: `" + EnvAPIKey + "`.",
				Optional:            true,
			},
			"api_secret": schema.StringAttribute{
				MarkdownDescription: "Secret of that API key. Default: `" + EnvAPISecret + "`.",
				Optional:            true,
				Sensitive:           true,
			},
			"request_timeout": schema.StringAttribute{
				MarkdownDescription: "Longest one HTTP request to the API may take, as a Go duration (`30s`, `2m`). Default `60s`. Waiting for a cluster is bounded by the resources' `timeouts` instead.",
				Optional:            true,
				Validators:          []validator.String{durationValidator{}},
			},
		},
	}
}

func (p *eddyProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	setting := func(v types.String, attr, env string) string {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Unknown "+attr,
				"The provider's "+attr+" depends on a value known only after apply. Set it from a variable or the "+env+" environment variable.")
			return ""
		}
		if !v.IsNull() {
			return v.ValueString()
		}
		return os.Getenv(env)
	}
	endpoint := setting(m.Endpoint, "endpoint", EnvEndpoint)
	key := setting(m.APIKey, "api_key", EnvAPIKey)
	secret := setting(m.APISecret, "api_secret", EnvAPISecret)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, s := range []struct{ attr, env, val string }{
		{"endpoint", EnvEndpoint, endpoint}, {"api_key", EnvAPIKey, key}, {"api_secret", EnvAPISecret, secret},
	} {
		if s.val == "" {
			resp.Diagnostics.AddAttributeError(path.Root(s.attr), "Missing "+s.attr,
				fmt.Sprintf("Set %s in the provider block or the %s environment variable.", s.attr, s.env))
		}
	}
	if endpoint != "" && !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid endpoint",
			fmt.Sprintf("%q is not an http:// or https:// URL.", endpoint))
	}
	timeout := 60 * time.Second
	if !m.RequestTimeout.IsNull() && !m.RequestTimeout.IsUnknown() {
		timeout, _ = time.ParseDuration(m.RequestTimeout.ValueString()) // validated in the schema
	}
	if resp.Diagnostics.HasError() {
		return
	}
	hc := &http.Client{Timeout: timeout, Transport: &retrying{next: http.DefaultTransport}}
	c := client.New(endpoint, client.WithAPIKey(key, secret), client.WithHTTPClient(hc),
		client.WithUserAgent("terraform-provider-eddy/"+p.version))
	resp.ResourceData = c
	resp.DataSourceData = c
}

func (p *eddyProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newClusterResource,
		newClusterQuotaResource,
		newClusterConfigResource,
		newTopicResource,
		newServiceAccountResource,
		newIdentityProviderResource,
		newIdentityPoolResource,
		newAPIKeyResource,
		newRoleBindingResource,
		newACLResource,
	}
}

func (p *eddyProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newClusterDataSource,
		newClusterQuotaDataSource,
		newClusterConfigDataSource,
		newTopicDataSource,
		newServiceAccountDataSource,
		newIdentityProviderDataSource,
		newIdentityPoolDataSource,
		newACLsDataSource,
	}
}

// clientFrom takes the *client.Client that Configure handed to a resource
// or data source. Before Configure ran (validation) data is nil.
func clientFrom(data any, diags interface {
	AddError(summary, detail string)
}) *client.Client {
	if data == nil {
		return nil
	}
	c, ok := data.(*client.Client)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *client.Client, got %T; this is a bug in the provider", data))
		return nil
	}
	return c
}
