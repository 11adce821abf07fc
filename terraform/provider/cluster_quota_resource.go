package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// eddy_cluster_quota: every quota (limit) of one cluster, as
// `eddy quota` and PATCH /v1/clusters/{id} {"limits": …} set them, within
// the organisation's plan's ceilings. The cluster is the resource's
// identity (id = cluster id): there is one set of quotas per cluster, so
// create and update are the same PATCH, and delete puts every quota back
// to the server's default (held to the plan's ceilings, and max_partitions
// to the partitions in use) rather than deleting anything.

var (
	_ resource.Resource                = &clusterQuotaResource{}
	_ resource.ResourceWithConfigure   = &clusterQuotaResource{}
	_ resource.ResourceWithImportState = &clusterQuotaResource{}
	_ datasource.DataSource            = &clusterQuotaDataSource{}
)

// quotaFields are limits.Limits' JSON names, in its field order: the
// attribute names of both the resource and the data source, so a limit
// added to limits.Limits shows up here without another list to keep.
var quotaFields = func() []string {
	var out []string
	for f := range reflect.TypeFor[limits.Limits]().Fields() {
		out = append(out, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	return out
}()

// quotaDescriptions say what each limit is; the range and default are
// added from limits.BoundOf.
var quotaDescriptions = map[string]string{
	"ingress_mbps":          "Produce bandwidth in MB/s, across all brokers",
	"egress_mbps":           "Fetch bandwidth in MB/s, across all brokers",
	"max_requests_per_sec":  "Kafka requests per second of every kind; clients over it are throttled",
	"max_connections":       "Kafka connections open at once; further ones are closed on their first request",
	"max_partitions":        "Partitions of all topics together; cannot be set below the partitions the cluster has",
	"max_storage_gb":        "Stored bytes, in GB",
	"max_topics":            "Topics; over it topic creation fails (`POLICY_VIOLATION` over Kafka)",
	"max_groups":            "Consumer groups with members or committed offsets; over it a new group is refused",
	"producer_ids_per_hour": "Producer ids (`InitProducerId`) per hour once the burst is spent; over it `THROTTLING_QUOTA_EXCEEDED`",
	"producer_id_burst":     "Producer ids that may be allocated at once",
	"max_retention_ms":      "Largest `retention.ms` of a topic; at the maximum (100 years) unlimited, and -1 is allowed",
	"max_retention_bytes":   "Largest `retention.bytes` of a topic (per partition); at the maximum (1 PB) unlimited, and -1 is allowed",
}

func quotaDescription(field string) string {
	b := limits.BoundOf(field)
	return fmt.Sprintf("%s (%d to %d; server default %d).", quotaDescriptions[field], b.Min, b.Max, b.Default)
}

// limitMap is l by JSON name (zero for a limit l leaves unset).
func limitMap(l limits.Limits) map[string]int64 {
	b, _ := json.Marshal(l)
	m := map[string]int64{}
	_ = json.Unmarshal(b, &m)
	for _, f := range quotaFields {
		m[f] += 0
	}
	return m
}

// limitsOf is the Limits holding m's values.
func limitsOf(m map[string]int64) limits.Limits {
	var l limits.Limits
	b, _ := json.Marshal(m)
	_ = json.Unmarshal(b, &l)
	return l
}

func int64Map(m map[string]int64) types.Map {
	v, _ := types.MapValueFrom(context.Background(), types.Int64Type, m)
	return v
}

// attributeGetter and attributeSetter are what plan, config and state
// share in the framework.
type attributeGetter interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}
type attributeSetter interface {
	SetAttribute(context.Context, path.Path, any) diag.Diagnostics
}

// setQuotaState writes cl's quotas into s.
func setQuotaState(ctx context.Context, s attributeSetter, cl client.Cluster, diags *diag.Diagnostics) {
	own := limitMap(cl.Limits)
	for _, f := range quotaFields {
		diags.Append(s.SetAttribute(ctx, path.Root(f), types.Int64Value(own[f]))...)
	}
	for k, v := range map[string]any{
		"id": types.StringValue(cl.ID), "cluster_id": types.StringValue(cl.ID), "plan": types.StringValue(cl.Plan),
		"ceilings": int64Map(limitMap(cl.Ceilings)), "effective_limits": int64Map(limitMap(cl.EffectiveLimits)),
	} {
		diags.Append(s.SetAttribute(ctx, path.Root(k), v)...)
	}
}

// plannedLimits are the limits g gives a value; those it leaves null or
// unknown stay zero, so the PATCH leaves them as the server has them.
func plannedLimits(ctx context.Context, g attributeGetter, diags *diag.Diagnostics) *limits.Limits {
	m := map[string]int64{}
	for _, f := range quotaFields {
		var v types.Int64
		diags.Append(g.GetAttribute(ctx, path.Root(f), &v)...)
		if !v.IsNull() && !v.IsUnknown() {
			m[f] = v.ValueInt64()
		}
	}
	if len(m) == 0 {
		return nil
	}
	l := limitsOf(m)
	return &l
}

func newClusterQuotaResource() resource.Resource { return &clusterQuotaResource{} }

type clusterQuotaResource struct{ c *client.Client }

func (r *clusterQuotaResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster_quota"
}

func (r *clusterQuotaResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := map[string]schema.Attribute{
		"id": computedString("The cluster id: a cluster has one set of quotas."),
		"cluster_id": schema.StringAttribute{
			MarkdownDescription: "Cluster whose quotas these are (`vc-…`). Changing it replaces the resource.",
			Required:            true,
			PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
		},
		"plan": computedString("The organisation's plan, whose ceilings hold the quotas."),
		"ceilings": schema.MapAttribute{
			MarkdownDescription: "The plan's ceiling of each quota, by quota name: a quota may not be set above it.",
			ElementType:         types.Int64Type, Computed: true,
		},
		"effective_limits": schema.MapAttribute{
			MarkdownDescription: "What the cluster is held to, by quota name: each quota the lower of its value and its ceiling " +
				"(lower than the value when the plan's ceiling was lowered after it was set).",
			ElementType: types.Int64Type, Computed: true,
		},
	}
	for _, f := range quotaFields {
		b := limits.BoundOf(f)
		attrs[f] = schema.Int64Attribute{
			MarkdownDescription: quotaDescription(f) + " Left out: the cluster keeps its value.",
			Optional:            true,
			Computed:            true,
			Validators:          []validator.Int64{int64validator.Between(b.Min, b.Max)},
			PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The quotas of a cluster (what `eddy quota` shows and sets): bandwidth, requests, connections, partitions, " +
			"storage, topics, groups, producer ids and retention, each within the organisation's plan's ceiling (a value above it " +
			"is refused, naming the quota and its ceiling). The quotas set change in place on every broker within seconds. " +
			"Destroying the resource puts every quota back to the server's default (held to the plan's ceilings, and " +
			"`max_partitions` to the partitions the cluster has). `eddy_cluster` sets some of the same quotas: set each quota " +
			"in one resource only, and give the `eddy_cluster` `lifecycle { ignore_changes = [...] }` for those this resource sets.",
		Attributes: attrs,
	}
}

func (r *clusterQuotaResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// apply PATCHes the limits the plan sets and stores what the server says.
func (r *clusterQuotaResource) apply(ctx context.Context, plan attributeGetter, state attributeSetter, diags *diag.Diagnostics) {
	var cluster types.String
	diags.Append(plan.GetAttribute(ctx, path.Root("cluster_id"), &cluster)...)
	l := plannedLimits(ctx, plan, diags)
	if diags.HasError() {
		return
	}
	id := cluster.ValueString()
	var cl client.Cluster
	var err error
	if l == nil {
		cl, err = r.c.GetCluster(ctx, id)
	} else {
		cl, err = r.c.UpdateCluster(ctx, id, client.UpdateClusterRequest{Limits: l})
	}
	if err != nil {
		addAPIError(diags, "set the quotas of cluster "+id, err)
		return
	}
	setQuotaState(ctx, state, cl, diags)
}

func (r *clusterQuotaResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *clusterQuotaResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *clusterQuotaResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var id types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := r.c.GetCluster(ctx, id.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the quotas of cluster "+id.ValueString(), err)
		return
	}
	setQuotaState(ctx, &resp.State, cl, &resp.Diagnostics)
}

// Delete puts the quotas back to the server's defaults, as far as the
// plan's ceilings and the partitions in use let them go.
func (r *clusterQuotaResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var id types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := r.c.GetCluster(ctx, id.ValueString())
	if client.IsNotFound(err) {
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the quotas of cluster "+id.ValueString(), err)
		return
	}
	l := limits.Defaults().Capped(cl.Ceilings)
	l.MaxPartitions = max(l.MaxPartitions, cl.PartitionsUsed)
	if _, err := r.c.UpdateCluster(ctx, id.ValueString(), client.UpdateClusterRequest{Limits: &l}); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "reset the quotas of cluster "+id.ValueString(), err)
	}
}

// ImportState takes the cluster id: terraform import eddy_cluster_quota.x vc-….
func (r *clusterQuotaResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), req.ID)...)
}

// data.eddy_cluster_quota: a cluster's quotas, its plan's ceilings and the
// effective limits, however they were set.

func newClusterQuotaDataSource() datasource.DataSource { return &clusterQuotaDataSource{} }

type clusterQuotaDataSource struct{ c *client.Client }

func (d *clusterQuotaDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster_quota"
}

func (d *clusterQuotaDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := map[string]dschema.Attribute{
		"id":         computedDS("The cluster id."),
		"cluster_id": dschema.StringAttribute{MarkdownDescription: "Cluster to look up (`vc-…`).", Required: true},
		"plan":       computedDS("The organisation's plan."),
		"ceilings": dschema.MapAttribute{MarkdownDescription: "The plan's ceiling of each quota, by quota name.",
			ElementType: types.Int64Type, Computed: true},
		"effective_limits": dschema.MapAttribute{MarkdownDescription: "What the cluster is held to, by quota name: each quota the lower of its value and its ceiling.",
			ElementType: types.Int64Type, Computed: true},
	}
	for _, f := range quotaFields {
		attrs[f] = computedInt(quotaDescription(f))
	}
	resp.Schema = dschema.Schema{
		MarkdownDescription: "Looks up the quotas of a cluster (as `eddy quota show` does), whether they were set by Terraform, the CLI or REST.",
		Attributes:          attrs,
	}
}

func (d *clusterQuotaDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *clusterQuotaDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var id types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("cluster_id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := d.c.GetCluster(ctx, id.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the quotas of cluster "+id.ValueString(), err)
		return
	}
	setQuotaState(ctx, &resp.State, cl, &resp.Diagnostics)
}
