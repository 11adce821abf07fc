package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// eddy_cluster: a virtual Kafka cluster. Create waits until the control
// plane reports it ready (timeouts.create); name, limits and default
// topic configs change in place.

var (
	_ resource.Resource                = &clusterResource{}
	_ resource.ResourceWithConfigure   = &clusterResource{}
	_ resource.ResourceWithImportState = &clusterResource{}
)

func newClusterResource() resource.Resource { return &clusterResource{} }

type clusterResource struct{ c *client.Client }

type clusterModel struct {
	ID                  types.String   `tfsdk:"id"`
	Name                types.String   `tfsdk:"name"`
	MaxPartitions       types.Int64    `tfsdk:"max_partitions"`
	IngressMBps         types.Int64    `tfsdk:"ingress_mbps"`
	EgressMBps          types.Int64    `tfsdk:"egress_mbps"`
	MaxRequestsPerSec   types.Int64    `tfsdk:"max_requests_per_sec"`
	MaxConnections      types.Int64    `tfsdk:"max_connections"`
	MaxStorageGB        types.Int64    `tfsdk:"max_storage_gb"`
	DefaultTopicConfigs types.Map      `tfsdk:"default_topic_configs"`
	BrokerConfigs       types.Map      `tfsdk:"broker_configs"`
	AllowedCIDRs        types.Set      `tfsdk:"allowed_cidrs"`
	Status              types.String   `tfsdk:"status"`
	BootstrapServers    types.String   `tfsdk:"bootstrap_servers"`
	SASLMechanisms      types.List     `tfsdk:"sasl_mechanisms"`
	OAuthIssuer         types.String   `tfsdk:"oauth_issuer"`
	OAuthTokenEndpoint  types.String   `tfsdk:"oauth_token_endpoint"`
	OAuthJWKSURI        types.String   `tfsdk:"oauth_jwks_uri"`
	OAuthAudience       types.String   `tfsdk:"oauth_audience"`
	CreatedAt           types.String   `tfsdk:"created_at"`
	Timeouts            timeouts.Value `tfsdk:"timeouts"`
}

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

// limitAttr is an optional limit the server defaults when it is left out;
// its range and default are limits', named by the limit's JSON name.
func limitAttr(field, what, more string) schema.Int64Attribute {
	b := limits.BoundOf(field)
	return schema.Int64Attribute{
		MarkdownDescription: fmt.Sprintf("%s (%d to %d; server default %d).%s", what, b.Min, b.Max, b.Default, more),
		Optional:            true,
		Computed:            true,
		Validators:          []validator.Int64{int64validator.Between(b.Min, b.Max)},
		PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
	}
}

func computedString(desc string) schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: desc,
		Computed:            true,
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

func (r *clusterResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A virtual Kafka cluster: a namespace of topics, consumer groups and ACLs on Eddy's shared brokers. " +
			"Creating one waits until the control plane reports it `ready` (bounded by `timeouts.create`). " +
			"Name, limits, default topic configs and broker configs change in place. Deleting a cluster deletes its topics, their data and the API keys scoped to it.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("Cluster id (`vc-…`)."),
			"name": schema.StringAttribute{
				MarkdownDescription: "Name, unique in the organisation: 1 to 64 letters, digits, `-`, `_` and `.`, starting with a letter or digit.",
				Required:            true,
				Validators:          []validator.String{nameValidator{"cluster"}},
			},
			"max_partitions": limitAttr("max_partitions", "Most partitions all topics of the cluster may have together",
				" Cannot be set below the partitions the cluster already has."),
			"ingress_mbps": limitAttr("ingress_mbps", "Produce bandwidth limit in MB/s", ""),
			"egress_mbps":  limitAttr("egress_mbps", "Fetch bandwidth limit in MB/s", ""),
			"max_requests_per_sec": limitAttr("max_requests_per_sec", "Kafka requests per second, of every kind, across all brokers",
				" Clients over it are throttled."),
			"max_connections": limitAttr("max_connections", "Kafka connections open at once across all brokers",
				" Connections over it are closed on their first request."),
			"max_storage_gb": limitAttr("max_storage_gb", "Storage limit in GB", ""),
			"default_topic_configs": schema.MapAttribute{
				MarkdownDescription: "Topic configs (Kafka names, e.g. `retention.ms`) that new topics of the cluster start with; " +
					"a topic's own `configs` override them. Changing them affects topics created afterwards only.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{configsValidator{}},
			},
			"broker_configs": schema.MapAttribute{
				MarkdownDescription: "Kafka broker configs of the cluster, as `DescribeConfigs` on the broker resource reports them: " +
					"`num.partitions` (partitions of topics created automatically or without a count), `auto.create.topics.enable`, " +
					"`default.replication.factor` (reported only), and the defaults of new topics' configs (`log.retention.ms`, " +
					"`log.retention.bytes`, `message.max.bytes`, `log.cleanup.policy`, `compression.type`, `min.insync.replicas`, " +
					"`log.segment.bytes`, `log.cleaner.delete.retention.ms`), beneath `default_topic_configs`. " +
					"`num.partitions` and the retention defaults are held to the cluster's limits. Configs left out have Kafka's defaults; " +
					"changing the topic defaults affects topics created afterwards only.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{configsValidator{broker: true}},
			},
			"allowed_cidrs": schema.SetAttribute{
				MarkdownDescription: "The cluster's IP allow-list: CIDR blocks in network form (`10.0.0.0/8`, `203.0.113.7/32`) its Kafka clients " +
					"and its REST sub-resources (topics, records, groups, ACLs) may be reached from; a client outside them is refused " +
					"(`SASL_AUTHENTICATION_FAILED` on Kafka, 403 over REST). Left out: from anywhere. The cluster itself stays manageable from anywhere.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Set{cidrsValidator{}},
			},
			"status":            computedString("`provisioning` or `ready`."),
			"bootstrap_servers": computedString("Bootstrap address for Kafka clients."),
			"sasl_mechanisms": schema.ListAttribute{
				MarkdownDescription: "SASL mechanisms the brokers offer: `PLAIN` (username = API key id, password = secret) and `OAUTHBEARER`.",
				ElementType:         types.StringType,
				Computed:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"oauth_issuer":         computedString("Issuer of the JWTs the brokers accept (OAUTHBEARER)."),
			"oauth_token_endpoint": computedString("OAuth 2.0 token endpoint (`client_credentials` with an API key), for `sasl.oauthbearer.method=oidc`."),
			"oauth_jwks_uri":       computedString("JWKS the brokers verify tokens with."),
			"oauth_audience":       computedString("Audience (`aud`) of the tokens."),
			"created_at":           computedString("Creation time (RFC 3339)."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *clusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// limitsPatch holds the limits the configuration sets; those it leaves
// out stay zero, so the request leaves them as the server has them.
func limitsPatch(m clusterModel) *limits.Limits {
	var l limits.Limits
	set := false
	i64 := func(v types.Int64) int64 {
		if v.IsNull() || v.IsUnknown() {
			return 0
		}
		set = true
		return v.ValueInt64()
	}
	l.IngressMBps, l.EgressMBps = int32(i64(m.IngressMBps)), int32(i64(m.EgressMBps))
	l.MaxRequestsPerSec, l.MaxConnections = int32(i64(m.MaxRequestsPerSec)), int32(i64(m.MaxConnections))
	l.MaxPartitions, l.MaxStorageGB = int32(i64(m.MaxPartitions)), i64(m.MaxStorageGB)
	if !set {
		return nil
	}
	return &l
}

// fromCluster copies what the server says into m. Default topic configs
// stay null while the server has none and the configuration set none.
func (m *clusterModel) fromCluster(cl client.Cluster) {
	m.ID = types.StringValue(cl.ID)
	m.Name = types.StringValue(cl.Name)
	m.MaxPartitions = types.Int64Value(int64(cl.Limits.MaxPartitions))
	m.IngressMBps = types.Int64Value(int64(cl.Limits.IngressMBps))
	m.EgressMBps = types.Int64Value(int64(cl.Limits.EgressMBps))
	m.MaxRequestsPerSec = types.Int64Value(int64(cl.Limits.MaxRequestsPerSec))
	m.MaxConnections = types.Int64Value(int64(cl.Limits.MaxConnections))
	m.MaxStorageGB = types.Int64Value(cl.Limits.MaxStorageGB)
	m.DefaultTopicConfigs = mapValue(cl.DefaultTopicConfigs, m.DefaultTopicConfigs.IsNull())
	m.BrokerConfigs = mapValue(cl.BrokerConfigs, m.BrokerConfigs.IsNull())
	m.AllowedCIDRs = setValue(cl.AllowedCIDRs, m.AllowedCIDRs.IsNull())
	m.Status = types.StringValue(cl.Status)
	m.BootstrapServers = types.StringValue(cl.Kafka.BootstrapServers)
	m.SASLMechanisms, _ = types.ListValueFrom(context.Background(), types.StringType, cl.Kafka.SASLMechanisms)
	m.OAuthIssuer = types.StringValue(cl.Kafka.OAuth.Issuer)
	m.OAuthTokenEndpoint = types.StringValue(cl.Kafka.OAuth.TokenEndpoint)
	m.OAuthJWKSURI = types.StringValue(cl.Kafka.OAuth.JWKSURI)
	m.OAuthAudience = types.StringValue(cl.Kafka.OAuth.Audience)
	m.CreatedAt = timeValue(cl.CreatedAt)
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, defaultReadyTimeout)
	resp.Diagnostics.Append(d...)
	cfgs := stringMap(ctx, plan.DefaultTopicConfigs, &resp.Diagnostics)
	bcfgs := stringMap(ctx, plan.BrokerConfigs, &resp.Diagnostics)
	cidrs := stringSet(ctx, plan.AllowedCIDRs, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := r.c.CreateCluster(ctx, client.CreateClusterRequest{
		Name: plan.Name.ValueString(), Limits: limitsPatch(plan), DefaultTopicConfigs: cfgs, BrokerConfigs: bcfgs,
		AllowedCIDRs: cidrs,
	}, idempotencyKey())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create cluster "+plan.Name.ValueString(), err)
		return
	}
	plan.fromCluster(cl)
	// Keep the cluster in state even if it never gets ready: Terraform
	// then taints it rather than losing track of it.
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	if ready, ok := waitReady(ctx, r.c, cl.ID, timeout, &resp.Diagnostics); ok {
		plan.fromCluster(ready)
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	}
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state clusterModel
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
		addAPIError(&resp.Diagnostics, "read cluster "+state.ID.ValueString(), err)
		return
	}
	state.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	upd := client.UpdateClusterRequest{Limits: limitsPatch(plan)}
	if !plan.Name.Equal(state.Name) {
		upd.Name = plan.Name.ValueStringPointer()
	}
	if !plan.DefaultTopicConfigs.Equal(state.DefaultTopicConfigs) {
		m := stringMap(ctx, plan.DefaultTopicConfigs, &resp.Diagnostics)
		if m == nil {
			m = map[string]string{} // left out of the configuration: clear
		}
		upd.DefaultTopicConfigs = &m
	}
	if !plan.BrokerConfigs.Equal(state.BrokerConfigs) {
		m := stringMap(ctx, plan.BrokerConfigs, &resp.Diagnostics)
		if m == nil {
			m = map[string]string{} // left out of the configuration: back to the defaults
		}
		upd.BrokerConfigs = &m
	}
	if !plan.AllowedCIDRs.Equal(state.AllowedCIDRs) {
		l := stringSet(ctx, plan.AllowedCIDRs, &resp.Diagnostics)
		if l == nil {
			l = []string{} // left out of the configuration: from anywhere
		}
		upd.AllowedCIDRs = &l
	}
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := r.c.UpdateCluster(ctx, state.ID.ValueString(), upd)
	if err != nil {
		addAPIError(&resp.Diagnostics, "update cluster "+state.ID.ValueString(), err)
		return
	}
	plan.fromCluster(cl)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.DeleteCluster(ctx, state.ID.ValueString()); err != nil && !client.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete cluster "+state.ID.ValueString(), err)
	}
}

// ImportState takes the cluster id: terraform import eddy_cluster.x vc-….
func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
