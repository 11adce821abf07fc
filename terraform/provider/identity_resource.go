package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// eddy_identity_provider and eddy_identity_pool: identity federation (an
// organisation's own OIDC issuer, and which of its tokens act as which
// service account in which cluster). Neither changes in place: any change
// replaces it.

var (
	_ resource.ResourceWithImportState = &identityProviderResource{}
	_ resource.ResourceWithImportState = &identityPoolResource{}
)

func newIdentityProviderResource() resource.Resource { return &identityProviderResource{} }
func newIdentityPoolResource() resource.Resource     { return &identityPoolResource{} }

type identityProviderResource struct{ c *client.Client }

type identityProviderModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	Issuer    types.String `tfsdk:"issuer"`
	JWKSURL   types.String `tfsdk:"jwks_url"`
	Audience  types.String `tfsdk:"audience"`
	CreatedAt types.String `tfsdk:"created_at"`
}

func requiredReplaced(desc string, v ...validator.String) schema.StringAttribute {
	return schema.StringAttribute{MarkdownDescription: desc, Required: true, Validators: v,
		PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}}
}

func (r *identityProviderResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_provider"
}

func (r *identityProviderResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An OIDC identity provider the organisation trusts (Okta, Entra ID, Keycloak, a Kubernetes or GitHub Actions issuer): " +
			"with an `eddy_identity_pool`, its tokens act as a service account without an Eddy secret. Any change replaces it; deleting it deletes its pools.",
		Attributes: map[string]schema.Attribute{
			"id":         computedString("Identity provider id (`idp-…`)."),
			"name":       requiredReplaced("Name, unique in the organisation.", nameValidator{"identity provider"}),
			"issuer":     requiredReplaced("The issuer URL: the `iss` of its tokens."),
			"jwks_url":   requiredReplaced("Where the provider publishes its signing keys (JWKS)."),
			"audience":   requiredReplaced("The `aud` its tokens for Eddy carry."),
			"created_at": computedString("Creation time (RFC 3339)."),
		},
	}
}

func (r *identityProviderResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (m *identityProviderModel) from(p client.IdentityProvider) {
	m.ID, m.Name, m.Issuer = types.StringValue(p.ID), types.StringValue(p.Name), types.StringValue(p.Issuer)
	m.JWKSURL, m.Audience, m.CreatedAt = types.StringValue(p.JWKSURL), types.StringValue(p.Audience), timeValue(p.CreatedAt)
}

func (r *identityProviderResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan identityProviderModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.c.CreateIdentityProvider(ctx, client.CreateIdentityProviderRequest{Name: plan.Name.ValueString(),
		Issuer: plan.Issuer.ValueString(), JWKSURL: plan.JWKSURL.ValueString(), Audience: plan.Audience.ValueString()}, idempotencyKey())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create identity provider "+plan.Name.ValueString(), err)
		return
	}
	plan.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *identityProviderResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state identityProviderModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.c.GetIdentityProvider(ctx, state.ID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read identity provider "+state.ID.ValueString(), err)
		return
	}
	state.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update is never called with a change (every attribute replaces).
func (r *identityProviderResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan identityProviderModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *identityProviderResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state identityProviderModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.DeleteIdentityProvider(ctx, state.ID.ValueString()); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete identity provider "+state.ID.ValueString(), err)
	}
}

// ImportState takes the identity provider id (idp-…).
func (r *identityProviderResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

type identityPoolResource struct{ c *client.Client }

type identityPoolModel struct {
	ID               types.String `tfsdk:"id"`
	Name             types.String `tfsdk:"name"`
	ProviderID       types.String `tfsdk:"provider_id"`
	ClusterID        types.String `tfsdk:"cluster_id"`
	ServiceAccountID types.String `tfsdk:"service_account_id"`
	Filter           types.Map    `tfsdk:"filter"`
	FilterExpression types.String `tfsdk:"filter_expression"`
	CreatedAt        types.String `tfsdk:"created_at"`
}

func (r *identityPoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity_pool"
}

func (r *identityPoolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An identity pool: the tokens of an `eddy_identity_provider` whose claims pass `filter` and `filter_expression` (each when set; at least one) act as a service account in a cluster " +
			"(its role bindings and ACLs apply). Clients name the pool: OAUTHBEARER extension `identityPoolId`, or the REST header `Eddy-Identity-Pool`. " +
			"Any change replaces it.",
		Attributes: map[string]schema.Attribute{
			"id":                 computedString("Identity pool id (`pool-…`): what clients name."),
			"name":               requiredReplaced("Name, unique in the organisation.", nameValidator{"identity pool"}),
			"provider_id":        requiredReplaced("The identity provider whose tokens it admits."),
			"cluster_id":         requiredReplaced("The cluster its tokens act in."),
			"service_account_id": requiredReplaced("The service account its tokens act as."),
			"filter": schema.MapAttribute{
				MarkdownDescription: "Claim name → accepted values: every claim named must be one of its values (a list claim such as `groups` must hold one). " +
					"For example `{ sub = [\"system:serviceaccount:prod:payments\"] }`. 1 to 16 claims, each with 1 to 64 values. " +
					"This, `filter_expression` or both.",
				ElementType:   types.ListType{ElemType: types.StringType},
				Optional:      true,
				Validators:    []validator.Map{mapvalidator.SizeAtLeast(1)},
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"filter_expression": schema.StringAttribute{
				MarkdownDescription: "An expression on the token's claims that must hold: `==`, `!=`, `in`, `&&`, `||`, `!`, parentheses, " +
					"`.startsWith(\"…\")` and `.endsWith(\"…\")` over `claims.<name>` (or `claims[\"<name>\"]`), strings, `true`, `false` and lists of strings; " +
					"for example `\"admins\" in claims.groups && claims.email.endsWith(\"@corp.example\")`. A test on a missing claim admits no one. " +
					"At most 4096 bytes; the server names the character of a syntax error. This, `filter` or both.",
				Optional:      true,
				Validators:    []validator.String{stringvalidator.LengthBetween(1, 4096)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"created_at": computedString("Creation time (RFC 3339)."),
		},
	}
}

func (r *identityPoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (m *identityPoolModel) from(p client.IdentityPool) {
	m.ID, m.Name, m.ProviderID = types.StringValue(p.ID), types.StringValue(p.Name), types.StringValue(p.ProviderID)
	m.ClusterID, m.ServiceAccountID, m.CreatedAt = types.StringValue(p.ClusterID), types.StringValue(p.ServiceAccountID), timeValue(p.CreatedAt)
	// Absent from the pool is null, as it is when left out of the
	// configuration.
	m.Filter = types.MapNull(types.ListType{ElemType: types.StringType})
	if len(p.Filter) > 0 {
		m.Filter, _ = types.MapValueFrom(context.Background(), types.ListType{ElemType: types.StringType}, p.Filter)
	}
	m.FilterExpression = types.StringNull()
	if p.FilterExpression != "" {
		m.FilterExpression = types.StringValue(p.FilterExpression)
	}
}

func (r *identityPoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan identityPoolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var filter map[string][]string
	if !plan.Filter.IsNull() {
		resp.Diagnostics.Append(plan.Filter.ElementsAs(ctx, &filter, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	p, err := r.c.CreateIdentityPool(ctx, client.CreateIdentityPoolRequest{Name: plan.Name.ValueString(), ProviderID: plan.ProviderID.ValueString(),
		ClusterID: plan.ClusterID.ValueString(), ServiceAccountID: plan.ServiceAccountID.ValueString(), Filter: filter,
		FilterExpression: plan.FilterExpression.ValueString()}, idempotencyKey())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create identity pool "+plan.Name.ValueString(), err)
		return
	}
	plan.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *identityPoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state identityPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.c.GetIdentityPool(ctx, state.ID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read identity pool "+state.ID.ValueString(), err)
		return
	}
	state.from(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update is never called with a change (every attribute replaces).
func (r *identityPoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan identityPoolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *identityPoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state identityPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.DeleteIdentityPool(ctx, state.ID.ValueString()); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete identity pool "+state.ID.ValueString(), err)
	}
}

// ImportState takes the identity pool id (pool-…).
func (r *identityPoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
