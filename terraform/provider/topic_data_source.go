package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// data.eddy_topic: one topic of a cluster, with all its explicit configs.

var (
	_ datasource.DataSource              = &topicDataSource{}
	_ datasource.DataSourceWithConfigure = &topicDataSource{}
)

func newTopicDataSource() datasource.DataSource { return &topicDataSource{} }

type topicDataSource struct{ c *client.Client }

type topicDataModel struct {
	ID            types.String `tfsdk:"id"`
	ClusterID     types.String `tfsdk:"cluster_id"`
	Name          types.String `tfsdk:"name"`
	Partitions    types.Int64  `tfsdk:"partitions"`
	Configs       types.Map    `tfsdk:"configs"`
	TopicID       types.String `tfsdk:"topic_id"`
	HighWatermark types.Int64  `tfsdk:"high_watermark_total"`
}

func (d *topicDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_topic"
}

func (d *topicDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up a topic of a cluster, whether it was made by Terraform, over REST or by a Kafka client.",
		Attributes: map[string]schema.Attribute{
			"id":         computedDS("`<cluster_id>/<name>`."),
			"cluster_id": schema.StringAttribute{MarkdownDescription: "Cluster of the topic.", Required: true},
			"name": schema.StringAttribute{MarkdownDescription: "Topic name.", Required: true,
				Validators: []validator.String{topicNameValidator{}}},
			"partitions":           computedInt("Number of partitions."),
			"configs":              schema.MapAttribute{MarkdownDescription: "Every explicitly set config (including those taken from the cluster's defaults at creation).", ElementType: types.StringType, Computed: true},
			"topic_id":             computedDS("Kafka topic id (a UUID)."),
			"high_watermark_total": computedInt("Sum of the partitions' high watermarks: how many records were ever committed (before retention)."),
		},
	}
}

func (d *topicDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *topicDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m topicDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cluster, name := m.ClusterID.ValueString(), m.Name.ValueString()
	t, err := d.c.GetTopic(ctx, cluster, name)
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read topic %q of cluster %s", name, cluster), err)
		return
	}
	var hw int64
	for _, p := range t.Partitions {
		hw += p.HighWatermark
	}
	m.ID = types.StringValue(topicID(cluster, t.Name))
	m.Partitions = types.Int64Value(int64(t.PartitionCount))
	m.Configs = mapValue(t.Configs, false)
	m.TopicID = types.StringValue(t.ID)
	m.HighWatermark = types.Int64Value(hw)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
