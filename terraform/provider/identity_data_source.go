package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// data.eddy_identity_provider and data.eddy_identity_pool: one of the
// organisation's, by id or by name.

var (
	_ datasource.DataSourceWithConfigValidators = &identityProviderDataSource{}
	_ datasource.DataSourceWithConfigValidators = &identityPoolDataSource{}
)

func newIdentityProviderDataSource() datasource.DataSource { return &identityProviderDataSource{} }
func newIdentityPoolDataSource() datasource.DataSource     { return &identityPoolDataSource{} }

func idOrName(what, prefix string) map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"id":   schema.StringAttribute{MarkdownDescription: what + " id (`" + prefix + "-…`).", Optional: true, Computed: true},
		"name": schema.StringAttribute{MarkdownDescription: what + " name.", Optional: true, Computed: true},
	}
}

var exactlyIDOrName = []datasource.ConfigValidator{datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name"))}

type identityProviderDataSource struct{ c *client.Client }

func (d *identityProviderDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_provider"
}

func (d *identityProviderDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := idOrName("Identity provider", "idp")
	attrs["issuer"] = computedDS("The issuer URL (the `iss` of its tokens).")
	attrs["jwks_url"] = computedDS("Where it publishes its signing keys.")
	attrs["audience"] = computedDS("The `aud` its tokens for Eddy carry.")
	attrs["created_at"] = computedDS("Creation time (RFC 3339).")
	resp.Schema = schema.Schema{MarkdownDescription: "Looks up an identity provider of the organisation by `id` or by `name` (exactly one of them).", Attributes: attrs}
}

func (d *identityProviderDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return exactlyIDOrName
}

func (d *identityProviderDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *identityProviderDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m identityProviderModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var (
		p   client.IdentityProvider
		err error
	)
	if !m.ID.IsNull() {
		p, err = d.c.GetIdentityProvider(ctx, m.ID.ValueString())
	} else {
		p, err = findByName(ctx, d.c.ListIdentityProviders, func(p client.IdentityProvider) string { return p.Name }, "identity provider", m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read identity provider", err)
		return
	}
	m.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

type identityPoolDataSource struct{ c *client.Client }

func (d *identityPoolDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_pool"
}

func (d *identityPoolDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := idOrName("Identity pool", "pool")
	attrs["provider_id"] = computedDS("The identity provider whose tokens it admits.")
	attrs["cluster_id"] = computedDS("The cluster its tokens act in.")
	attrs["service_account_id"] = computedDS("The service account its tokens act as.")
	attrs["filter"] = schema.MapAttribute{MarkdownDescription: "Claim name → accepted values.", ElementType: types.ListType{ElemType: types.StringType}, Computed: true}
	attrs["filter_expression"] = computedDS("The expression on the token's claims it requires (null without one).")
	attrs["created_at"] = computedDS("Creation time (RFC 3339).")
	resp.Schema = schema.Schema{MarkdownDescription: "Looks up an identity pool of the organisation by `id` or by `name` (exactly one of them).", Attributes: attrs}
}

func (d *identityPoolDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return exactlyIDOrName
}

func (d *identityPoolDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *identityPoolDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m identityPoolModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var (
		p   client.IdentityPool
		err error
	)
	if !m.ID.IsNull() {
		p, err = d.c.GetIdentityPool(ctx, m.ID.ValueString())
	} else {
		p, err = findByName(ctx, d.c.ListIdentityPools, func(p client.IdentityPool) string { return p.Name }, "identity pool", m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read identity pool", err)
		return
	}
	m.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
