package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/eddy-streams/eddy/api/client"
)

// data.eddy_service_account: one service account, by id or by name.

var (
	_ datasource.DataSource                     = &serviceAccountDataSource{}
	_ datasource.DataSourceWithConfigure        = &serviceAccountDataSource{}
	_ datasource.DataSourceWithConfigValidators = &serviceAccountDataSource{}
)

func newServiceAccountDataSource() datasource.DataSource { return &serviceAccountDataSource{} }

type serviceAccountDataSource struct{ c *client.Client }

func (d *serviceAccountDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account"
}

func (d *serviceAccountDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up a service account of the organisation by `id` or by `name` (exactly one of them), " +
			"e.g. the admin account the organisation was created with.",
		Attributes: map[string]schema.Attribute{
			"id":          schema.StringAttribute{MarkdownDescription: "Service account id (`sa-…`).", Optional: true, Computed: true},
			"name":        schema.StringAttribute{MarkdownDescription: "Service account name.", Optional: true, Computed: true},
			"description": computedDS("Free text."),
			"org_admin":   schema.BoolAttribute{MarkdownDescription: "Whether the account administers the whole organisation.", Computed: true},
			"created_at":  computedDS("Creation time (RFC 3339)."),
		},
	}
}

func (d *serviceAccountDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
	}
}

func (d *serviceAccountDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func findServiceAccount(ctx context.Context, c *client.Client, name string) (client.ServiceAccount, error) {
	return findByName(ctx, c.ListServiceAccounts, func(sa client.ServiceAccount) string { return sa.Name }, "service account", name)
}

// findByName pages through a listing for the item named name; a 404
// problem when there is none.
func findByName[T any](ctx context.Context, list func(context.Context, client.ListOptions) (client.List[T], error), nameOf func(T) string, what, name string) (T, error) {
	opt := client.ListOptions{Limit: 100}
	for {
		page, err := list(ctx, opt)
		if err != nil {
			var zero T
			return zero, err
		}
		for _, it := range page.Items {
			if nameOf(it) == name {
				return it, nil
			}
		}
		if page.NextCursor == "" {
			var zero T
			return zero, &client.Problem{Status: 404, Type: client.ProblemNotFound, Title: "Not found",
				Detail: fmt.Sprintf("the organisation has no %s named %q", what, name)}
		}
		opt.Cursor = page.NextCursor
	}
}

func (d *serviceAccountDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m serviceAccountModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var (
		sa  client.ServiceAccount
		err error
	)
	if !m.ID.IsNull() {
		sa, err = d.c.GetServiceAccount(ctx, m.ID.ValueString())
	} else {
		sa, err = findServiceAccount(ctx, d.c, m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read service account", err)
		return
	}
	m.from(sa)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
