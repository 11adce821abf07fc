package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// eddy_cluster_config: the cluster-level Kafka configs of one cluster —
// what DescribeConfigs on the broker resource reports and
// `eddy cluster update --broker-config` sets, over REST the cluster's
// broker_configs. The set is replaced as a whole (configs left out return
// to Kafka's defaults), so the resource owns all of them: id = cluster
// id, and delete empties the set.

var (
	_ resource.Resource                = &clusterConfigResource{}
	_ resource.ResourceWithConfigure   = &clusterConfigResource{}
	_ resource.ResourceWithImportState = &clusterConfigResource{}
	_ datasource.DataSource            = &clusterConfigDataSource{}
)

const brokerConfigsDoc = "`num.partitions` (partitions of topics created automatically or without a count), " +
	"`auto.create.topics.enable`, and the defaults of new topics' configs (`log.retention.ms`, `log.retention.bytes`, " +
	"`message.max.bytes`, `log.cleanup.policy`, `compression.type`, `min.insync.replicas`, `log.segment.bytes`, " +
	"`log.cleaner.delete.retention.ms`)"

type clusterConfigModel struct {
	ID        types.String `tfsdk:"id"`
	ClusterID types.String `tfsdk:"cluster_id"`
	Configs   types.Map    `tfsdk:"configs"`
}

func newClusterConfigResource() resource.Resource { return &clusterConfigResource{} }

type clusterConfigResource struct{ c *client.Client }

func (r *clusterConfigResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster_config"
}

func (r *clusterConfigResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The cluster-level Kafka configs of a cluster, as `DescribeConfigs` on the broker resource reports them and " +
			"`eddy cluster update --broker-config` sets them: " + brokerConfigsDoc + ". They change in place and reach every broker " +
			"within seconds; `num.partitions` and the retention defaults are held to the cluster's quotas. The resource owns the whole " +
			"set: configs left out have Kafka's defaults, and destroying it returns every config to its default. `eddy_cluster`'s " +
			"`broker_configs` is the same set: use one or the other, and give the `eddy_cluster` " +
			"`lifecycle { ignore_changes = [broker_configs] }` when this resource manages them.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("The cluster id: a cluster has one set of configs."),
			"cluster_id": schema.StringAttribute{
				MarkdownDescription: "Cluster whose configs these are (`vc-…`). Changing it replaces the resource.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"configs": schema.MapAttribute{
				MarkdownDescription: "Config name to value, checked at plan time with Kafka's names and value rules.",
				ElementType:         types.StringType,
				Required:            true,
				Validators:          []validator.Map{configsValidator{broker: true}},
			},
		},
	}
}

func (r *clusterConfigResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *clusterConfigResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan clusterConfigModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	m := stringMap(ctx, plan.Configs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	id := plan.ClusterID.ValueString()
	cl, err := r.c.UpdateCluster(ctx, id, client.UpdateClusterRequest{BrokerConfigs: &m})
	if err != nil {
		addAPIError(&resp.Diagnostics, "set the configs of cluster "+id, err)
		return
	}
	plan.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (m *clusterConfigModel) fromCluster(cl client.Cluster) {
	m.ID, m.ClusterID = types.StringValue(cl.ID), types.StringValue(cl.ID)
	m.Configs = mapValue(cl.BrokerConfigs, false)
}

func (r *clusterConfigResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state clusterConfigModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := r.c.GetCluster(ctx, state.ID.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the configs of cluster "+state.ID.ValueString(), err)
		return
	}
	state.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *clusterConfigResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state clusterConfigModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	m := stringMap(ctx, plan.Configs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if m == nil {
		m = map[string]string{}
	}
	id := state.ID.ValueString()
	cl, err := r.c.UpdateCluster(ctx, id, client.UpdateClusterRequest{BrokerConfigs: &m})
	if err != nil {
		addAPIError(&resp.Diagnostics, "set the configs of cluster "+id, err)
		return
	}
	plan.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Delete returns every config to Kafka's default.
func (r *clusterConfigResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state clusterConfigModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	none := map[string]string{}
	_, err := r.c.UpdateCluster(ctx, state.ID.ValueString(), client.UpdateClusterRequest{BrokerConfigs: &none})
	if err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "reset the configs of cluster "+state.ID.ValueString(), err)
	}
}

// ImportState takes the cluster id: terraform import eddy_cluster_config.x vc-….
func (r *clusterConfigResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), req.ID)...)
}

// data.eddy_cluster_config: a cluster's cluster-level configs, however
// they were set.

func newClusterConfigDataSource() datasource.DataSource { return &clusterConfigDataSource{} }

type clusterConfigDataSource struct{ c *client.Client }

func (d *clusterConfigDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster_config"
}

func (d *clusterConfigDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = dschema.Schema{
		MarkdownDescription: "Looks up the cluster-level Kafka configs a cluster has set (" + brokerConfigsDoc + "), whether Terraform, the CLI or REST set them.",
		Attributes: map[string]dschema.Attribute{
			"id":         computedDS("The cluster id."),
			"cluster_id": dschema.StringAttribute{MarkdownDescription: "Cluster to look up (`vc-…`).", Required: true},
			"configs": dschema.MapAttribute{MarkdownDescription: "The configs set, by name; those not listed have Kafka's defaults.",
				ElementType: types.StringType, Computed: true},
		},
	}
}

func (d *clusterConfigDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *clusterConfigDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m clusterConfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := d.c.GetCluster(ctx, m.ClusterID.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the configs of cluster "+m.ClusterID.ValueString(), err)
		return
	}
	m.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
