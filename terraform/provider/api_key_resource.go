package provider

import (
	"context"
	"fmt"
	"time"

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
)

// eddy_api_key: a credential of a service account, for REST (HTTP basic),
// Kafka SASL/PLAIN and the token endpoint.
//
// Rotation is an in-place update, planned when rotation_keepers or the
// description change, or when the key is older than rotate_after. The
// update creates the new key first and deletes the old one only once the
// new one exists, so at every moment at least one valid key exists; the
// resource's id and secret change. (Replacing the resource instead — a
// new service account or cluster — destroys first unless the
// configuration asks for create_before_destroy.)

var (
	_ resource.Resource                = &apiKeyResource{}
	_ resource.ResourceWithConfigure   = &apiKeyResource{}
	_ resource.ResourceWithImportState = &apiKeyResource{}
	_ resource.ResourceWithModifyPlan  = &apiKeyResource{}
)

func newAPIKeyResource() resource.Resource { return &apiKeyResource{} }

type apiKeyResource struct{ c *client.Client }

type apiKeyModel struct {
	ID               types.String   `tfsdk:"id"`
	ServiceAccountID types.String   `tfsdk:"service_account_id"`
	ClusterID        types.String   `tfsdk:"cluster_id"`
	Description      types.String   `tfsdk:"description"`
	RotationKeepers  types.Map      `tfsdk:"rotation_keepers"`
	RotateAfter      types.String   `tfsdk:"rotate_after"`
	Secret           types.String   `tfsdk:"secret"`
	CreatedAt        types.String   `tfsdk:"created_at"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
}

func (r *apiKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_key"
}

func (r *apiKeyResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An API key of a service account: `id` and `secret` log in to Kafka with SASL/PLAIN " +
			"(username = id, password = secret), to the REST API with HTTP basic, and to the token endpoint for OAUTHBEARER.\n\n" +
			"**Rotation** is a plan away: change `rotation_keepers` (or `description`), or set `rotate_after` and apply once the key is older. " +
			"The update creates the new key before it deletes the old one, so there is never a moment without a valid key; `id` and `secret` change in place " +
			"and everything that references them is updated in the same apply.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("Key id (`key-…`): the SASL/PLAIN username. Changes when the key rotates."),
			"service_account_id": schema.StringAttribute{
				MarkdownDescription: "Service account the key belongs to. Changing it replaces the key.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"cluster_id": schema.StringAttribute{
				MarkdownDescription: "Limit the key to one cluster; Kafka clients then need not name the cluster. Left out, the key is valid for the whole organisation " +
					"(Kafka clients log in as `<key id>@<cluster id>`). Changing it replaces the key.",
				Optional:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "Free text, at most 256 bytes. Changing it rotates the key.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
				Validators:          []validator.String{stringvalidator.LengthAtMost(256)},
			},
			"rotation_keepers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values; any change rotates the key (e.g. `{ generation = \"2\" }` or a `time_rotating` id).",
				ElementType:         types.StringType,
				Optional:            true,
			},
			"rotate_after": schema.StringAttribute{
				MarkdownDescription: "Rotate the key in the first apply after it is this old, as a Go duration (`720h` for 30 days). " +
					"A plan shows the rotation once it is due.",
				Optional:   true,
				Validators: []validator.String{durationValidator{}},
			},
			"secret": schema.StringAttribute{
				MarkdownDescription: "The secret: the SASL/PLAIN password. Known only to the apply that created the key (null after an import). Changes when the key rotates.",
				Computed:            true,
				Sensitive:           true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_at": computedString("Creation time of the current key (RFC 3339)."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *apiKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// rotationDue reports whether a key created at createdAt is older than
// rotateAfter (both as stored in state).
func rotationDue(createdAt, rotateAfter types.String, now time.Time) bool {
	if rotateAfter.IsNull() || rotateAfter.IsUnknown() || createdAt.IsNull() || createdAt.IsUnknown() {
		return false
	}
	d, err := time.ParseDuration(rotateAfter.ValueString())
	if err != nil || d <= 0 {
		return false
	}
	t, err := time.Parse(time.RFC3339, createdAt.ValueString())
	return err == nil && !now.Before(t.Add(d))
}

// ModifyPlan plans a rotation: id, secret and created_at become unknown.
func (r *apiKeyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var plan, state apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var why string
	switch {
	case !plan.ServiceAccountID.Equal(state.ServiceAccountID) || !plan.ClusterID.Equal(state.ClusterID):
		return // replaced, not rotated
	case !plan.RotationKeepers.Equal(state.RotationKeepers):
		why = "rotation_keepers changed"
	case !plan.Description.Equal(state.Description):
		why = "its description changed (a key's description is fixed, so a new key carries the new one)"
	case rotationDue(state.CreatedAt, plan.RotateAfter, time.Now()):
		why = fmt.Sprintf("it was created at %s, more than rotate_after (%s) ago", state.CreatedAt.ValueString(), plan.RotateAfter.ValueString())
	default:
		return
	}
	plan.ID = types.StringUnknown()
	plan.Secret = types.StringUnknown()
	plan.CreatedAt = types.StringUnknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
	resp.Diagnostics.AddWarning("API key "+state.ID.ValueString()+" will be rotated",
		"The key rotates because "+why+". The apply creates a new key, then deletes "+state.ID.ValueString()+
			"; both are valid in between, so clients never lack a valid key, but clients still using the old key's secret must be given the new one.")
}

// create makes a key. A POST retried after a lost response is replayed
// by the server without the secret; such a key is useless to Terraform,
// so it is deleted and made again under a fresh idempotency key.
func (r *apiKeyResource) create(ctx context.Context, m apiKeyModel) (client.APIKey, error) {
	req := client.CreateAPIKeyRequest{
		ServiceAccountID: m.ServiceAccountID.ValueString(),
		ClusterID:        m.ClusterID.ValueString(),
		Description:      m.Description.ValueString(),
	}
	for {
		k, err := r.c.CreateAPIKey(ctx, req, idempotencyKey())
		if err != nil || k.Secret != "" {
			return k, err
		}
		if err := r.c.DeleteAPIKey(ctx, k.ID); err != nil && !client.IsNotFound(err) {
			return k, fmt.Errorf("key %s came back without its secret and could not be deleted: %w", k.ID, err)
		}
	}
}

func (m *apiKeyModel) from(k client.APIKey) {
	m.ID = types.StringValue(k.ID)
	m.ServiceAccountID = types.StringValue(k.ServiceAccountID)
	if k.ClusterID != "" {
		m.ClusterID = types.StringValue(k.ClusterID)
	} else {
		m.ClusterID = types.StringNull()
	}
	m.Description = types.StringValue(k.Description)
	m.CreatedAt = timeValue(k.CreatedAt)
	if k.Secret != "" {
		m.Secret = types.StringValue(k.Secret)
	}
}

func (r *apiKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cluster := plan.ClusterID.ValueString(); cluster != "" {
		timeout, d := plan.Timeouts.Create(ctx, defaultReadyTimeout)
		resp.Diagnostics.Append(d...)
		if resp.Diagnostics.HasError() {
			return
		}
		if _, ok := waitReady(ctx, r.c, cluster, timeout, &resp.Diagnostics); !ok {
			return
		}
	}
	k, err := r.create(ctx, plan)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create API key for "+plan.ServiceAccountID.ValueString(), err)
		return
	}
	plan.from(k)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *apiKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state apiKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	k, err := r.c.GetAPIKey(ctx, state.ID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read API key "+state.ID.ValueString(), err)
		return
	}
	state.from(k) // the secret is never read back; state keeps it
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *apiKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.ID.IsUnknown() {
		// Only rotate_after or the keepers' null/empty form changed:
		// nothing to do on the server.
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		return
	}
	// New key first ...
	k, err := r.create(ctx, plan)
	if err != nil {
		addAPIError(&resp.Diagnostics, "rotate API key "+state.ID.ValueString()+" (create the new key)", err)
		return
	}
	plan.from(k)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	// ... then the old one. The state already holds the new key, so a
	// failure here leaves the old key to delete by hand, not a lost key.
	old := state.ID.ValueString()
	if err := r.c.DeleteAPIKey(ctx, old); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "rotate API key "+old+" (delete the old key; the new key "+k.ID+" is in use)", err)
	}
}

func (r *apiKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state apiKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.DeleteAPIKey(ctx, state.ID.ValueString()); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete API key "+state.ID.ValueString(), err)
	}
}

// ImportState takes the key id (key-…). The secret cannot be imported.
func (r *apiKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	resp.Diagnostics.AddWarning("The secret of an imported API key is unknown",
		"Eddy shows a key's secret only when it is created, so secret stays null. Rotate the key (change rotation_keepers) to have Terraform hold a secret.")
}
