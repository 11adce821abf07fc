package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/api/client"
)

// data.eddy_acls: every ACL of a cluster, or those of one principal —
// including ACLs made by Kafka clients (CreateAcls) or over REST, which
// is what makes it useful for audits next to eddy_acl.

var (
	_ datasource.DataSource              = &aclsDataSource{}
	_ datasource.DataSourceWithConfigure = &aclsDataSource{}
)

func newACLsDataSource() datasource.DataSource { return &aclsDataSource{} }

type aclsDataSource struct{ c *client.Client }

type aclsDataModel struct {
	ID        types.String   `tfsdk:"id"`
	ClusterID types.String   `tfsdk:"cluster_id"`
	Principal types.String   `tfsdk:"principal"`
	ACLs      []aclDataModel `tfsdk:"acls"`
}

type aclDataModel struct {
	ACLID        types.String `tfsdk:"acl_id"`
	Principal    types.String `tfsdk:"principal"`
	ResourceType types.String `tfsdk:"resource_type"`
	ResourceName types.String `tfsdk:"resource_name"`
	PatternType  types.String `tfsdk:"pattern_type"`
	Operation    types.String `tfsdk:"operation"`
	Permission   types.String `tfsdk:"permission"`
	Host         types.String `tfsdk:"host"`
	CreatedAt    types.String `tfsdk:"created_at"`
}

func (d *aclsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_acls"
}

func (d *aclsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the Kafka ACLs of a cluster — whoever made them: Terraform, a Kafka admin client or REST — " +
			"optionally only those of one principal.",
		Attributes: map[string]schema.Attribute{
			"id":         computedDS("`<cluster_id>` or `<cluster_id>/<principal>`."),
			"cluster_id": schema.StringAttribute{MarkdownDescription: "Cluster whose ACLs to list.", Required: true},
			"principal": schema.StringAttribute{MarkdownDescription: "Only the ACLs naming exactly this principal " +
				"(`User:<service account id>` or `User:*`; ACLs for `User:*` also apply to everyone but are not listed for them).", Optional: true},
			"acls": schema.ListNestedAttribute{
				MarkdownDescription: "The ACLs, in id order; attributes as in `eddy_acl`.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"acl_id":        computedDS("The ACL's id (`acl-…`)."),
					"principal":     computedDS("`User:<service account id>` or `User:*`."),
					"resource_type": computedDS("`topic`, `group`, `cluster` or `transactional_id`."),
					"resource_name": computedDS("Resource name or prefix; `*` for all; `kafka-cluster` for the cluster."),
					"pattern_type":  computedDS("`literal` or `prefixed`."),
					"operation":     computedDS("Kafka operation, e.g. `read`, `describe_configs`."),
					"permission":    computedDS("`allow` or `deny`."),
					"host":          computedDS("`*` or an IP address."),
					"created_at":    computedDS("Creation time (RFC 3339)."),
				}},
			},
		},
	}
}

func (d *aclsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *aclsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m aclsDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cluster := m.ClusterID.ValueString()
	m.ID = types.StringValue(cluster)
	if !m.Principal.IsNull() {
		m.ID = types.StringValue(cluster + "/" + m.Principal.ValueString())
	}
	m.ACLs = []aclDataModel{} // an empty list, not null, when there are none
	opt := client.ListOptions{Limit: 100}
	for {
		page, err := d.c.ListACLs(ctx, cluster, opt)
		if err != nil {
			addAPIError(&resp.Diagnostics, fmt.Sprintf("list the ACLs of cluster %s", cluster), err)
			return
		}
		for _, a := range page.Items {
			if !m.Principal.IsNull() && a.Principal != m.Principal.ValueString() {
				continue
			}
			m.ACLs = append(m.ACLs, aclDataModel{
				ACLID: types.StringValue(a.ID), Principal: types.StringValue(a.Principal),
				ResourceType: types.StringValue(a.ResourceType), ResourceName: types.StringValue(a.ResourceName),
				PatternType: types.StringValue(a.PatternType), Operation: types.StringValue(a.Operation),
				Permission: types.StringValue(a.Permission), Host: types.StringValue(a.Host), CreatedAt: timeValue(a.CreatedAt),
			})
		}
		if page.NextCursor == "" {
			break
		}
		opt.Cursor = page.NextCursor
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
