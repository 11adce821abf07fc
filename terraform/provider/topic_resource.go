package provider

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
)

// eddy_topic: a Kafka topic of a cluster.
//
// Configs: the server stores a topic's explicitly set configs, and a
// topic created over REST starts with the cluster's default topic configs
// merged in. The resource manages the configs its configuration names;
// Read reports every other explicit config as drift, except one that
// still equals the cluster's default (it came from the defaults, not from
// someone's change). Update keeps those default-derived configs, so
// Terraform never silently drops them.
//
// Partitions grow in place; Kafka cannot remove partitions, so a lower
// count replaces the topic, and the plan says so with a warning.

var (
	_ resource.Resource                = &topicResource{}
	_ resource.ResourceWithConfigure   = &topicResource{}
	_ resource.ResourceWithImportState = &topicResource{}
)

func newTopicResource() resource.Resource { return &topicResource{} }

type topicResource struct{ c *client.Client }

type topicModel struct {
	ID         types.String   `tfsdk:"id"`
	ClusterID  types.String   `tfsdk:"cluster_id"`
	Name       types.String   `tfsdk:"name"`
	Partitions types.Int64    `tfsdk:"partitions"`
	Configs    types.Map      `tfsdk:"configs"`
	TopicID    types.String   `tfsdk:"topic_id"`
	Timeouts   timeouts.Value `tfsdk:"timeouts"`
}

// maxTopicPartitions is the server's bound on one topic (api/topics.go).
const maxTopicPartitions = 10_000

func (r *topicResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_topic"
}

func (r *topicResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Kafka topic of a cluster. Partitions can grow in place; a lower count replaces the topic " +
			"(Kafka cannot remove partitions), deleting its data, and the plan warns about it. " +
			"`configs` are compared with the topic's explicit configs on every refresh, so a config changed outside Terraform " +
			"— over REST or with a Kafka admin client (AlterConfigs) — shows as drift.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("`<cluster_id>/<name>`, also the import id."),
			"cluster_id": schema.StringAttribute{
				MarkdownDescription: "Cluster of the topic. Changing it replaces the topic.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Topic name (Kafka's rules: 1 to 249 ASCII letters, digits, `.`, `_` and `-`). Changing it replaces the topic.",
				Required:            true,
				Validators:          []validator.String{topicNameValidator{}},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"partitions": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Number of partitions, 1 to %d (default 1). Raising it adds partitions in place; "+
					"lowering it replaces the topic and loses its data.", maxTopicPartitions),
				Optional:      true,
				Computed:      true,
				Default:       int64default.StaticInt64(1),
				Validators:    []validator.Int64{int64validator.Between(1, maxTopicPartitions)},
				PlanModifiers: []planmodifier.Int64{partitionsDecreaseReplaces{}},
			},
			"configs": schema.MapAttribute{
				MarkdownDescription: "Topic configs by their Kafka names, e.g. `retention.ms = \"86400000\"`, `cleanup.policy = \"compact\"`. " +
					"Names and values are checked at plan time. Configs left out take the cluster's `default_topic_configs`, then Eddy's defaults.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{configsValidator{}},
			},
			"topic_id": computedString("Kafka topic id (a UUID)."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true}),
		},
	}
}

// partitionsDecreaseReplaces plans a replacement when the partition
// count goes down, with a warning that says what that costs.
type partitionsDecreaseReplaces struct{}

func (partitionsDecreaseReplaces) Description(context.Context) string {
	return "lowering the partition count replaces the topic"
}
func (m partitionsDecreaseReplaces) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}
func (partitionsDecreaseReplaces) PlanModifyInt64(ctx context.Context, req planmodifier.Int64Request, resp *planmodifier.Int64Response) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || req.StateValue.IsNull() || req.PlanValue.IsUnknown() || req.PlanValue.IsNull() {
		return
	}
	from, to := req.StateValue.ValueInt64(), req.PlanValue.ValueInt64()
	if to >= from {
		return
	}
	resp.RequiresReplace = true
	var name types.String
	req.Plan.GetAttribute(ctx, path.Root("name"), &name)
	resp.Diagnostics.AddAttributeWarning(req.Path, "Topic will be replaced: partitions cannot be removed",
		fmt.Sprintf("Kafka topics cannot lose partitions. Lowering partitions of topic %q from %d to %d deletes the topic with all its records "+
			"and creates it again with %d partitions. Keep partitions at %d or more to update the topic in place.",
			name.ValueString(), from, to, to, from))
}

func (r *topicResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func topicID(cluster, name string) string { return cluster + "/" + name }

// newTopicDefaults is what the server put beneath a topic's own configs
// when it created it: its default topic configs and its broker configs'
// topic defaults (log.retention.ms as retention.ms, ...), by the server's
// own rule, so that neither shows as drift.
func newTopicDefaults(cl client.Cluster) map[string]string {
	return clusterconfig.NewTopicDefaults(cl.BrokerConfigs, cl.DefaultTopicConfigs)
}

// managedConfigs picks the configs Terraform shows from a topic's
// explicit configs: every one that prior (the state's configs) names,
// and every other one unless it equals the cluster's default.
func managedConfigs(explicit, prior, defaults map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range explicit {
		if _, ok := prior[k]; ok {
			out[k] = v
			continue
		}
		if d, ok := defaults[k]; ok && d == v {
			continue
		}
		out[k] = v
	}
	return out
}

// keptConfigs is what an update sends: the planned configs plus the
// default-derived ones managedConfigs hides (not in the prior state, not
// planned, equal to the cluster's default).
func keptConfigs(explicit, prior, planned, defaults map[string]string) map[string]string {
	out := maps.Clone(planned)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range explicit {
		_, inPrior := prior[k]
		_, inPlan := planned[k]
		if d, ok := defaults[k]; ok && d == v && !inPrior && !inPlan {
			out[k] = v
		}
	}
	return out
}

// read fetches the topic and its cluster's defaults and fills m;
// found is false if the topic (or cluster) is gone.
func (r *topicResource) read(ctx context.Context, m *topicModel, prior map[string]string) (found bool, err error) {
	cluster, name := m.ClusterID.ValueString(), m.Name.ValueString()
	t, err := r.c.GetTopic(ctx, cluster, name)
	if client.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cl, err := r.c.GetCluster(ctx, cluster)
	if client.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.ID = types.StringValue(topicID(cluster, t.Name))
	m.TopicID = types.StringValue(t.ID)
	m.Partitions = types.Int64Value(int64(t.PartitionCount))
	m.Configs = mapValue(managedConfigs(t.Configs, prior, newTopicDefaults(cl)), m.Configs.IsNull())
	return true, nil
}

func (r *topicResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan topicModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, defaultReadyTimeout)
	resp.Diagnostics.Append(d...)
	cfgs := stringMap(ctx, plan.Configs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	cluster, name := plan.ClusterID.ValueString(), plan.Name.ValueString()
	if _, ok := waitReady(ctx, r.c, cluster, timeout, &resp.Diagnostics); !ok {
		return
	}
	n := int32(plan.Partitions.ValueInt64())
	t, err := r.c.CreateTopic(ctx, cluster, client.CreateTopicRequest{Name: name, Partitions: &n, Configs: cfgs}, idempotencyKey())
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("create topic %q in cluster %s", name, cluster), err)
		return
	}
	plan.ID = types.StringValue(topicID(cluster, t.Name))
	plan.TopicID = types.StringValue(t.ID)
	plan.Partitions = types.Int64Value(int64(t.PartitionCount))
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *topicResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state topicModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	prior := stringMap(ctx, state.Configs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	found, err := r.read(ctx, &state, prior)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read topic "+state.ID.ValueString(), err)
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *topicResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state topicModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	prior := stringMap(ctx, state.Configs, &resp.Diagnostics)
	planned := stringMap(ctx, plan.Configs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	cluster, name := state.ClusterID.ValueString(), state.Name.ValueString()
	what := fmt.Sprintf("update topic %q in cluster %s", name, cluster)
	var upd client.UpdateTopicRequest
	if !plan.Partitions.Equal(state.Partitions) {
		n := int32(plan.Partitions.ValueInt64())
		upd.Partitions = &n
	}
	if !plan.Configs.Equal(state.Configs) {
		t, err := r.c.GetTopic(ctx, cluster, name)
		if err != nil {
			addAPIError(&resp.Diagnostics, what, err)
			return
		}
		cl, err := r.c.GetCluster(ctx, cluster)
		if err != nil {
			addAPIError(&resp.Diagnostics, what, err)
			return
		}
		cfg := keptConfigs(t.Configs, prior, planned, newTopicDefaults(cl))
		upd.Configs = &cfg
		// The ETag covers partitions and configs: a change made between
		// the read above and this update fails rather than being lost.
		if _, err := r.c.UpdateTopic(ctx, cluster, name, upd, client.IfMatch(t.ETag)); err != nil {
			addAPIError(&resp.Diagnostics, what, err)
			return
		}
	} else if upd.Partitions != nil {
		if _, err := r.c.UpdateTopic(ctx, cluster, name, upd); err != nil {
			addAPIError(&resp.Diagnostics, what, err)
			return
		}
	}
	found, err := r.read(ctx, &plan, planned)
	if err != nil || !found {
		if err == nil {
			err = fmt.Errorf("topic %s disappeared during the update", topicID(cluster, name))
		}
		addAPIError(&resp.Diagnostics, what, err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *topicResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state topicModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.DeleteTopic(ctx, state.ClusterID.ValueString(), state.Name.ValueString())
	if err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete topic "+state.ID.ValueString(), err)
	}
}

// ImportState takes <cluster_id>/<topic name>.
func (r *topicResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	cluster, name, ok := strings.Cut(req.ID, "/")
	if !ok || cluster == "" || name == "" {
		resp.Diagnostics.AddError("Invalid import id",
			fmt.Sprintf("%q is not <cluster_id>/<topic name>, e.g. vc-abc123/orders.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), cluster)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}
