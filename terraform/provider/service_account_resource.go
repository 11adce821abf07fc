package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// eddy_service_account: a non-human principal of the organisation. Name
// and description change in place. Deleting it deletes its API keys and
// role bindings on the server.

var (
	_ resource.Resource                = &serviceAccountResource{}
	_ resource.ResourceWithConfigure   = &serviceAccountResource{}
	_ resource.ResourceWithImportState = &serviceAccountResource{}
)

func newServiceAccountResource() resource.Resource { return &serviceAccountResource{} }

type serviceAccountResource struct{ c *client.Client }

type serviceAccountModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	OrgAdmin    types.Bool   `tfsdk:"org_admin"`
	CreatedAt   types.String `tfsdk:"created_at"`
}

func (r *serviceAccountResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account"
}

func (r *serviceAccountResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A service account: the principal applications act as. Give it API keys (`eddy_api_key`) and roles on clusters " +
			"(`eddy_role_binding`). Name and description change in place. Deleting it also deletes its API keys and role bindings.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("Service account id (`sa-…`); also the principal `User:<id>` in Kafka ACLs."),
			"name": schema.StringAttribute{
				MarkdownDescription: "Name, unique in the organisation: 1 to 64 letters, digits, `-`, `_` and `.`, starting with a letter or digit.",
				Required:            true,
				Validators:          []validator.String{nameValidator{"service account"}},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "Free text, at most 256 bytes.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
				Validators:          []validator.String{stringvalidator.LengthAtMost(256)},
			},
			"org_admin": schema.BoolAttribute{
				MarkdownDescription: "Whether the account administers the whole organisation (only the account created with the organisation, or ones the operator made so).",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"created_at": computedString("Creation time (RFC 3339)."),
		},
	}
}

func (r *serviceAccountResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (m *serviceAccountModel) from(sa client.ServiceAccount) {
	m.ID = types.StringValue(sa.ID)
	m.Name = types.StringValue(sa.Name)
	m.Description = types.StringValue(sa.Description)
	m.OrgAdmin = types.BoolValue(sa.OrgAdmin)
	m.CreatedAt = timeValue(sa.CreatedAt)
}

func (r *serviceAccountResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sa, err := r.c.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{
		Name: plan.Name.ValueString(), Description: plan.Description.ValueString(),
	}, idempotencyKey())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create service account "+plan.Name.ValueString(), err)
		return
	}
	plan.from(sa)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *serviceAccountResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceAccountModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sa, err := r.c.GetServiceAccount(ctx, state.ID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read service account "+state.ID.ValueString(), err)
		return
	}
	state.from(sa)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *serviceAccountResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state serviceAccountModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var upd client.UpdateServiceAccountRequest
	if !plan.Name.Equal(state.Name) {
		upd.Name = plan.Name.ValueStringPointer()
	}
	if !plan.Description.Equal(state.Description) {
		upd.Description = plan.Description.ValueStringPointer()
	}
	sa, err := r.c.UpdateServiceAccount(ctx, state.ID.ValueString(), upd)
	if err != nil {
		addAPIError(&resp.Diagnostics, "update service account "+state.ID.ValueString(), err)
		return
	}
	plan.from(sa)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *serviceAccountResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serviceAccountModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.DeleteServiceAccount(ctx, state.ID.ValueString()); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete service account "+state.ID.ValueString(), err)
	}
}

// ImportState takes the service account id (sa-…).
func (r *serviceAccountResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
