package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/acl"
)

// eddy_acl: one Kafka ACL of a cluster — the same ACLs Kafka clients
// manage with CreateAcls/DescribeAcls/DeleteAcls. ACLs cannot be edited,
// so every change replaces the ACL; plan-time validation applies the
// server's rules (internal/acl), including which operations a resource
// type has.

var (
	_ resource.Resource                   = &aclResource{}
	_ resource.ResourceWithConfigure      = &aclResource{}
	_ resource.ResourceWithImportState    = &aclResource{}
	_ resource.ResourceWithValidateConfig = &aclResource{}
)

func newACLResource() resource.Resource { return &aclResource{} }

type aclResource struct{ c *client.Client }

type aclModel struct {
	ID           types.String   `tfsdk:"id"`
	ClusterID    types.String   `tfsdk:"cluster_id"`
	Principal    types.String   `tfsdk:"principal"`
	ResourceType types.String   `tfsdk:"resource_type"`
	ResourceName types.String   `tfsdk:"resource_name"`
	PatternType  types.String   `tfsdk:"pattern_type"`
	Operation    types.String   `tfsdk:"operation"`
	Permission   types.String   `tfsdk:"permission"`
	Host         types.String   `tfsdk:"host"`
	ACLID        types.String   `tfsdk:"acl_id"`
	CreatedAt    types.String   `tfsdk:"created_at"`
	Timeouts     timeouts.Value `tfsdk:"timeouts"`
}

func names[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func (r *aclResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_acl"
}

func (r *aclResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	oneOf := func(desc string, vals []string) schema.StringAttribute {
		return schema.StringAttribute{
			MarkdownDescription: desc + " One of `" + strings.Join(vals, "`, `") + "`. Changing it replaces the ACL.",
			Required:            true,
			Validators:          []validator.String{stringvalidator.OneOf(vals...)},
			PlanModifiers:       replace,
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Kafka ACL of a cluster: allows or denies a principal one operation on topics, groups, transactional ids or the cluster. " +
			"A deny wins over every allow, roles (`eddy_role_binding`) included. ACLs are the ones Kafka admin clients see (DescribeAcls); " +
			"one deleted outside Terraform (DeleteAcls, REST) shows in the next plan, and the apply creates it again. " +
			"ACLs cannot be edited: every change replaces the ACL, the old one going first; add " +
			"`lifecycle { create_before_destroy = true }` to keep a deny in force throughout. The principal, the operations a resource type has and the " +
			"cluster resource's name are checked by `terraform plan`.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("`<cluster_id>/<acl_id>`, also the import id."),
			"cluster_id": schema.StringAttribute{
				MarkdownDescription: "Cluster of the ACL. Changing it replaces the ACL.",
				Required:            true,
				PlanModifiers:       replace,
			},
			"principal": schema.StringAttribute{
				MarkdownDescription: "`User:<service account id>` (e.g. `\"User:${eddy_service_account.app.id}\"`) or `User:*` for everyone. Changing it replaces the ACL.",
				Required:            true,
				PlanModifiers:       replace,
			},
			"resource_type": oneOf("Kind of resource.", names(acl.ResourceTypes)),
			"resource_name": schema.StringAttribute{
				MarkdownDescription: "Name of the topic, group or transactional id (a prefix with `pattern_type = \"prefixed\"`; `*` for all), or `" + acl.ClusterName + "` for the cluster. Changing it replaces the ACL.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthBetween(1, 255)},
				PlanModifiers:       replace,
			},
			"pattern_type": schema.StringAttribute{
				MarkdownDescription: "`literal` (default) or `prefixed`. Changing it replaces the ACL.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(string(acl.Literal)),
				Validators:          []validator.String{stringvalidator.OneOf(names(acl.PatternTypes)...)},
				PlanModifiers:       replace,
			},
			"operation":  oneOf("Kafka operation.", names(acl.Operations)),
			"permission": oneOf("Allow or deny.", names(acl.Permissions)),
			"host": schema.StringAttribute{
				MarkdownDescription: "`*` (default), the IP address clients connect from, or a CIDR block of them written as its network address (`10.0.0.0/8`; KIP-1276). Changing it replaces the ACL.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("*"),
				PlanModifiers:       replace,
			},
			"acl_id":     computedString("The ACL's own id (`acl-…`)."),
			"created_at": computedString("Creation time (RFC 3339)."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *aclResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig applies the server's rules (internal/acl) to the whole
// ACL: the principal's form, the cluster resource's name, which operations
// a resource type has, the wildcard's pattern type, the host.
func (r *aclResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m aclModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if fe := m.check(); fe != nil {
		resp.Diagnostics.AddAttributeError(path.Root(fe.Field), "Invalid ACL", fe.Field+" "+fe.Message+".")
	}
}

// check validates what is known of a configured ACL. An unknown value —
// typically the principal, "User:${eddy_service_account.x.id}", before
// the account exists — stands in as one that passes, so the rest is still
// checked at plan time; the server checks the whole ACL at apply. Values
// outside an enumeration, and names of a bad length, are left to the
// attributes' own validators, which report them once.
func (m aclModel) check() *acl.FieldError {
	val := func(v types.String, unknown, null string) string {
		switch {
		case v.IsUnknown():
			return unknown
		case v.IsNull():
			return null
		}
		return v.ValueString()
	}
	a := acl.ACL{
		Principal:    val(m.Principal, acl.AnyPrincipal, acl.AnyPrincipal),
		ResourceType: acl.ResourceType(val(m.ResourceType, string(acl.Topic), string(acl.Topic))),
		PatternType:  acl.PatternType(val(m.PatternType, string(acl.Literal), string(acl.Literal))),
		Operation:    acl.Operation(val(m.Operation, string(acl.All), string(acl.All))),
		Permission:   acl.Permission(val(m.Permission, string(acl.Allow), string(acl.Allow))),
		Host:         val(m.Host, "*", "*"),
	}
	if m.ResourceType.IsUnknown() {
		a.Operation = acl.All // every resource type has it
	}
	name := "name"
	if a.ResourceType == acl.Cluster {
		name = acl.ClusterName
	}
	a.ResourceName = val(m.ResourceName, name, name)
	if !slices.Contains(acl.ResourceTypes, a.ResourceType) || !slices.Contains(acl.PatternTypes, a.PatternType) ||
		!slices.Contains(acl.Operations, a.Operation) || !slices.Contains(acl.Permissions, a.Permission) ||
		a.ResourceName == "" || len(a.ResourceName) > 255 {
		return nil
	}
	var fe *acl.FieldError // Validate's only kind of error
	errors.As(a.Validate(), &fe)
	return fe
}

func (m *aclModel) from(a client.ACL) {
	m.ID = types.StringValue(a.ClusterID + "/" + a.ID)
	m.ClusterID = types.StringValue(a.ClusterID)
	m.Principal = types.StringValue(a.Principal)
	m.ResourceType = types.StringValue(a.ResourceType)
	m.ResourceName = types.StringValue(a.ResourceName)
	m.PatternType = types.StringValue(a.PatternType)
	m.Operation = types.StringValue(a.Operation)
	m.Permission = types.StringValue(a.Permission)
	m.Host = types.StringValue(a.Host)
	m.ACLID = types.StringValue(a.ID)
	m.CreatedAt = timeValue(a.CreatedAt)
}

func (r *aclResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan aclModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, defaultReadyTimeout)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	cluster := plan.ClusterID.ValueString()
	if _, ok := waitReady(ctx, r.c, cluster, timeout, &resp.Diagnostics); !ok {
		return
	}
	a, err := r.c.CreateACL(ctx, cluster, client.CreateACLRequest{
		Principal: plan.Principal.ValueString(), ResourceType: plan.ResourceType.ValueString(),
		ResourceName: plan.ResourceName.ValueString(), PatternType: plan.PatternType.ValueString(),
		Operation: plan.Operation.ValueString(), Permission: plan.Permission.ValueString(), Host: plan.Host.ValueString(),
	}, idempotencyKey())
	if err != nil {
		hint := ""
		if client.IsConflict(err) {
			// Kafka treats an ACL as a value, so the same ACL made
			// with kafka-acls.sh, over REST or by another eddy_acl
			// blocks this one; the problem detail names its id.
			hint = "The same ACL exists already. Import it (terraform import <address> " + cluster + "/<its id>) or delete it first."
		}
		addAPIErrorHint(&resp.Diagnostics, fmt.Sprintf("create ACL (%s %s %s on %s %s) in cluster %s", plan.Permission.ValueString(),
			plan.Principal.ValueString(), plan.Operation.ValueString(), plan.ResourceType.ValueString(), plan.ResourceName.ValueString(), cluster), err, hint)
		return
	}
	plan.from(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *aclResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state aclModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, err := r.c.GetACL(ctx, state.ClusterID.ValueString(), state.ACLID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read ACL "+state.ID.ValueString(), err)
		return
	}
	state.from(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update only ever sees a new timeouts block: everything else replaces.
func (r *aclResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan aclModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *aclResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state aclModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.DeleteACL(ctx, state.ClusterID.ValueString(), state.ACLID.ValueString())
	if err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete ACL "+state.ID.ValueString(), err)
	}
}

// ImportState takes <cluster_id>/<acl_id>.
func (r *aclResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	cluster, id, ok := strings.Cut(req.ID, "/")
	if !ok || cluster == "" || id == "" {
		resp.Diagnostics.AddError("Invalid import id", fmt.Sprintf("%q is not <cluster_id>/<acl_id>, e.g. vc-abc123/acl-def456.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), cluster)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("acl_id"), id)...)
}
