package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// data.eddy_cluster: one cluster of the organisation, by id or by name.

var (
	_ datasource.DataSource                     = &clusterDataSource{}
	_ datasource.DataSourceWithConfigure        = &clusterDataSource{}
	_ datasource.DataSourceWithConfigValidators = &clusterDataSource{}
)

func newClusterDataSource() datasource.DataSource { return &clusterDataSource{} }

type clusterDataSource struct{ c *client.Client }

type clusterDataModel struct {
	ID                  types.String `tfsdk:"id"`
	Name                types.String `tfsdk:"name"`
	MaxPartitions       types.Int64  `tfsdk:"max_partitions"`
	IngressMBps         types.Int64  `tfsdk:"ingress_mbps"`
	EgressMBps          types.Int64  `tfsdk:"egress_mbps"`
	MaxRequestsPerSec   types.Int64  `tfsdk:"max_requests_per_sec"`
	MaxConnections      types.Int64  `tfsdk:"max_connections"`
	MaxStorageGB        types.Int64  `tfsdk:"max_storage_gb"`
	DefaultTopicConfigs types.Map    `tfsdk:"default_topic_configs"`
	BrokerConfigs       types.Map    `tfsdk:"broker_configs"`
	PartitionsUsed      types.Int64  `tfsdk:"partitions_used"`
	Status              types.String `tfsdk:"status"`
	BootstrapServers    types.String `tfsdk:"bootstrap_servers"`
	SASLMechanisms      types.List   `tfsdk:"sasl_mechanisms"`
	OAuthIssuer         types.String `tfsdk:"oauth_issuer"`
	OAuthTokenEndpoint  types.String `tfsdk:"oauth_token_endpoint"`
	OAuthJWKSURI        types.String `tfsdk:"oauth_jwks_uri"`
	OAuthAudience       types.String `tfsdk:"oauth_audience"`
	CreatedAt           types.String `tfsdk:"created_at"`
}

func (d *clusterDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func computedDS(desc string) schema.StringAttribute {
	return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
}

func computedInt(desc string) schema.Int64Attribute {
	return schema.Int64Attribute{MarkdownDescription: desc, Computed: true}
}

func (d *clusterDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up a virtual cluster of the organisation by `id` or by `name` (exactly one of them).",
		Attributes: map[string]schema.Attribute{
			"id":                    schema.StringAttribute{MarkdownDescription: "Cluster id (`vc-…`).", Optional: true, Computed: true},
			"name":                  schema.StringAttribute{MarkdownDescription: "Cluster name.", Optional: true, Computed: true},
			"max_partitions":        computedInt("Partition limit of the cluster."),
			"ingress_mbps":          computedInt("Produce bandwidth limit in MB/s."),
			"egress_mbps":           computedInt("Fetch bandwidth limit in MB/s."),
			"max_requests_per_sec":  computedInt("Kafka request rate limit, per second across all brokers."),
			"max_connections":       computedInt("Limit of Kafka connections open at once across all brokers."),
			"max_storage_gb":        computedInt("Storage limit in GB."),
			"default_topic_configs": schema.MapAttribute{MarkdownDescription: "Configs new topics start with.", ElementType: types.StringType, Computed: true},
			"broker_configs":        schema.MapAttribute{MarkdownDescription: "Kafka broker configs the cluster has set (`num.partitions`, `log.retention.ms`, ...); the others have Kafka's defaults.", ElementType: types.StringType, Computed: true},
			"partitions_used":       computedInt("Partitions of all topics of the cluster now."),
			"status":                computedDS("`provisioning` or `ready`."),
			"bootstrap_servers":     computedDS("Bootstrap address for Kafka clients."),
			"sasl_mechanisms":       schema.ListAttribute{MarkdownDescription: "SASL mechanisms the brokers offer.", ElementType: types.StringType, Computed: true},
			"oauth_issuer":          computedDS("Issuer of the JWTs the brokers accept."),
			"oauth_token_endpoint":  computedDS("OAuth 2.0 token endpoint for `sasl.oauthbearer.method=oidc`."),
			"oauth_jwks_uri":        computedDS("JWKS the brokers verify tokens with."),
			"oauth_audience":        computedDS("Audience (`aud`) of the tokens."),
			"created_at":            computedDS("Creation time (RFC 3339)."),
		},
	}
}

func (d *clusterDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
	}
}

func (d *clusterDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// findCluster pages through the organisation's clusters for a name.
func findCluster(ctx context.Context, c *client.Client, name string) (client.Cluster, error) {
	opt := client.ListOptions{Limit: 100}
	for {
		page, err := c.ListClusters(ctx, opt)
		if err != nil {
			return client.Cluster{}, err
		}
		for _, cl := range page.Items {
			if cl.Name == name {
				return cl, nil
			}
		}
		if page.NextCursor == "" {
			return client.Cluster{}, &client.Problem{Status: 404, Type: client.ProblemNotFound, Title: "Not found",
				Detail: fmt.Sprintf("the organisation has no cluster named %q", name)}
		}
		opt.Cursor = page.NextCursor
	}
}

func (d *clusterDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m clusterDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var (
		cl  client.Cluster
		err error
	)
	if !m.ID.IsNull() {
		cl, err = d.c.GetCluster(ctx, m.ID.ValueString())
	} else {
		cl, err = findCluster(ctx, d.c, m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read cluster", err)
		return
	}
	var rm clusterModel
	rm.DefaultTopicConfigs = types.MapNull(types.StringType)
	rm.fromCluster(cl)
	rm.DefaultTopicConfigs = mapValue(cl.DefaultTopicConfigs, false)
	rm.BrokerConfigs = mapValue(cl.BrokerConfigs, false)
	resp.Diagnostics.Append(resp.State.Set(ctx, clusterDataModel{
		ID: rm.ID, Name: rm.Name, MaxPartitions: rm.MaxPartitions, IngressMBps: rm.IngressMBps, EgressMBps: rm.EgressMBps,
		MaxRequestsPerSec: rm.MaxRequestsPerSec, MaxConnections: rm.MaxConnections,
		MaxStorageGB: rm.MaxStorageGB, DefaultTopicConfigs: rm.DefaultTopicConfigs, BrokerConfigs: rm.BrokerConfigs, PartitionsUsed: types.Int64Value(int64(cl.PartitionsUsed)),
		Status: rm.Status, BootstrapServers: rm.BootstrapServers, SASLMechanisms: rm.SASLMechanisms, OAuthIssuer: rm.OAuthIssuer,
		OAuthTokenEndpoint: rm.OAuthTokenEndpoint, OAuthJWKSURI: rm.OAuthJWKSURI, OAuthAudience: rm.OAuthAudience, CreatedAt: rm.CreatedAt,
	})...)
}
