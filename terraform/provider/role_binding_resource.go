package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// eddy_role_binding: a role of a service account on a cluster. A binding
// cannot be edited on the server, so a new role is an in-place update
// that binds the new role first and removes the old binding after, the
// account never being without access in between; the id changes.

var (
	_ resource.Resource                = &roleBindingResource{}
	_ resource.ResourceWithConfigure   = &roleBindingResource{}
	_ resource.ResourceWithImportState = &roleBindingResource{}
	_ resource.ResourceWithModifyPlan  = &roleBindingResource{}
)

func newRoleBindingResource() resource.Resource { return &roleBindingResource{} }

type roleBindingResource struct{ c *client.Client }

type roleBindingModel struct {
	ID               types.String   `tfsdk:"id"`
	ClusterID        types.String   `tfsdk:"cluster_id"`
	ServiceAccountID types.String   `tfsdk:"service_account_id"`
	Role             types.String   `tfsdk:"role"`
	BindingID        types.String   `tfsdk:"binding_id"`
	CreatedAt        types.String   `tfsdk:"created_at"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
}

var roles = []string{client.RoleAdmin, client.RoleDeveloperRead, client.RoleDeveloperWrite}

func (r *roleBindingResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_role_binding"
}

func (r *roleBindingResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Grants a service account a role on a cluster: `admin` (everything in the cluster), `developer-write` " +
			"(produce, consume, manage topics and groups) or `developer-read` (consume). Changing the role binds the new role " +
			"before removing the old one, so the account keeps access throughout.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("`<cluster_id>/<binding_id>`, also the import id."),
			"cluster_id": schema.StringAttribute{
				MarkdownDescription: "Cluster the role applies to. Changing it replaces the binding.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"service_account_id": schema.StringAttribute{
				MarkdownDescription: "Service account that gets the role. Changing it replaces the binding.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"role": schema.StringAttribute{
				MarkdownDescription: "One of `" + strings.Join(roles, "`, `") + "`. Changes in place.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.OneOf(roles...)},
			},
			"binding_id": computedString("The binding's own id (`rb-…`). Changes with the role."),
			"created_at": computedString("Creation time of the current binding (RFC 3339)."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *roleBindingResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan: a new role makes a new binding, so its ids are unknown.
func (r *roleBindingResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var plan, state roleBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || plan.Role.Equal(state.Role) {
		return
	}
	plan.ID, plan.BindingID, plan.CreatedAt = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
}

func (m *roleBindingModel) from(rb client.RoleBinding) {
	m.ID = types.StringValue(rb.ClusterID + "/" + rb.ID)
	m.ClusterID = types.StringValue(rb.ClusterID)
	m.ServiceAccountID = types.StringValue(rb.ServiceAccountID)
	m.Role = types.StringValue(rb.Role)
	m.BindingID = types.StringValue(rb.ID)
	m.CreatedAt = timeValue(rb.CreatedAt)
}

func (r *roleBindingResource) bind(ctx context.Context, m roleBindingModel) (client.RoleBinding, error) {
	return r.c.CreateRoleBinding(ctx, m.ClusterID.ValueString(), client.CreateRoleBindingRequest{
		ServiceAccountID: m.ServiceAccountID.ValueString(), Role: m.Role.ValueString(),
	}, idempotencyKey())
}

func (r *roleBindingResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan roleBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, defaultReadyTimeout)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, ok := waitReady(ctx, r.c, plan.ClusterID.ValueString(), timeout, &resp.Diagnostics); !ok {
		return
	}
	rb, err := r.bind(ctx, plan)
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("bind role %s to %s on %s", plan.Role.ValueString(), plan.ServiceAccountID.ValueString(), plan.ClusterID.ValueString()), err)
		return
	}
	plan.from(rb)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *roleBindingResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state roleBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	rb, err := r.c.GetRoleBinding(ctx, state.ClusterID.ValueString(), state.BindingID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read role binding "+state.ID.ValueString(), err)
		return
	}
	state.from(rb)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *roleBindingResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state roleBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Role.Equal(state.Role) { // only timeouts changed
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		return
	}
	rb, err := r.bind(ctx, plan)
	if err != nil {
		addAPIError(&resp.Diagnostics, "bind role "+plan.Role.ValueString()+" (replacing "+state.ID.ValueString()+")", err)
		return
	}
	plan.from(rb)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	err = r.c.DeleteRoleBinding(ctx, state.ClusterID.ValueString(), state.BindingID.ValueString())
	if err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "remove the old role binding "+state.ID.ValueString()+" (the new one is "+plan.ID.ValueString()+")", err)
	}
}

func (r *roleBindingResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state roleBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.DeleteRoleBinding(ctx, state.ClusterID.ValueString(), state.BindingID.ValueString())
	if err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete role binding "+state.ID.ValueString(), err)
	}
}

// ImportState takes <cluster_id>/<binding_id>.
func (r *roleBindingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	cluster, id, ok := strings.Cut(req.ID, "/")
	if !ok || cluster == "" || id == "" {
		resp.Diagnostics.AddError("Invalid import id", fmt.Sprintf("%q is not <cluster_id>/<binding_id>, e.g. vc-abc123/rb-def456.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), cluster)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("binding_id"), id)...)
}
