package main

// `eddy identity-provider ...` and `eddy identity-pool ...`: identity
// federation, through the REST API (docs/security.md).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newIdentityProviderCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "identity-provider", Aliases: []string{"identity-providers", "idp"},
		Short: "Manage the OIDC identity providers the organisation trusts (identity federation)",
		Example: "  eddy identity-provider create corp --issuer https://login.corp.example --jwks-url https://login.corp.example/keys --audience eddy\n" +
			"  eddy identity-provider list"}
	f.register(cmd)
	fields := func(p client.IdentityProvider) [][2]string {
		return [][2]string{{"ID", p.ID}, {"Name", p.Name}, {"Issuer", p.Issuer}, {"JWKS URL", p.JWKSURL},
			{"Audience", p.Audience}, {"Created", p.CreatedAt.Format(time.RFC3339)}}
	}
	var req client.CreateIdentityProviderRequest
	create := &cobra.Command{
		Use: "create NAME", Short: "Register an identity provider", Args: cobra.ExactArgs(1),
		Example: "  eddy identity-provider create k8s --issuer https://oidc.eks.eu-west-1.amazonaws.com/id/ABC \\\n" +
			"    --jwks-url https://oidc.eks.eu-west-1.amazonaws.com/id/ABC/keys --audience eddy",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			req.Name = args[0]
			p, err := cl.CreateIdentityProvider(cmd.Context(), req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, fields(p))
		},
	}
	create.Flags().StringVar(&req.Issuer, "issuer", "", "the provider's issuer URL (the iss of its tokens; required)")
	create.Flags().StringVar(&req.JWKSURL, "jwks-url", "", "where the provider publishes its signing keys (required)")
	create.Flags().StringVar(&req.Audience, "audience", "", "the aud its tokens for Eddy carry (required)")
	for _, n := range []string{"issuer", "jwks-url", "audience"} {
		create.MarkFlagRequired(n)
	}
	cmd.AddCommand(create, &cobra.Command{
		Use: "list", Short: "List identity providers", Args: cobra.NoArgs, Example: "  eddy identity-provider list -o yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			ps, err := listAll(cmd.Context(), cl.ListIdentityProviders)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.ID, p.Name, p.Issuer, p.Audience})
			}
			return f.print(cmd.OutOrStdout(), ps, []string{"ID", "NAME", "ISSUER", "AUDIENCE"}, rows)
		},
	}, &cobra.Command{
		Use: "delete ID", Short: "Delete an identity provider and its pools", Args: cobra.ExactArgs(1), Example: "  eddy identity-provider delete idp-...",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteIdentityProvider(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted identity provider %s\n", args[0])
			return nil
		},
	})
	return cmd
}

func newIdentityPoolCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "identity-pool", Aliases: []string{"identity-pools"},
		Short: "Manage identity pools: which tokens of a provider act as which service account in which cluster",
		Example: "  eddy identity-pool create payments --provider idp-... --service-account sa-... --claim sub=system:serviceaccount:prod:payments\n" +
			"  eddy identity-pool list"}
	f.register(cmd)
	fields := func(p client.IdentityPool) [][2]string {
		return [][2]string{{"ID", p.ID}, {"Name", p.Name}, {"Provider", p.ProviderID}, {"Cluster", p.ClusterID},
			{"Service account", p.ServiceAccountID}, {"Filter", filterString(p.Filter)}, {"Filter expression", p.FilterExpression}, {"Created", p.CreatedAt.Format(time.RFC3339)}}
	}
	var (
		req     client.CreateIdentityPoolRequest
		cluster string
		claims  []string
	)
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an identity pool", Args: cobra.ExactArgs(1),
		Example: "  eddy identity-pool create ci --provider idp-... --service-account sa-... \\\n" +
			"    --claim repository=acme/payments --claim ref=refs/heads/main\n" +
			"  eddy identity-pool create admins --provider idp-... --service-account sa-... \\\n" +
			"    --filter-expression '\"admins\" in claims.groups && claims.email.endsWith(\"@corp.example\")'",
		RunE: func(cmd *cobra.Command, args []string) error {
			// Parsed before anything is asked of the API.
			if len(claims) == 0 && req.FilterExpression == "" {
				return fmt.Errorf("give --claim name=value, --filter-expression or both: a pool must say whose tokens it admits")
			}
			req.Filter = map[string][]string{}
			for _, c := range claims {
				name, val, ok := strings.Cut(c, "=")
				if !ok || name == "" {
					return fmt.Errorf("--claim: want name=value, not %q", c)
				}
				req.Filter[name] = append(req.Filter[name], val)
			}
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			req.Name, req.ClusterID = args[0], id
			p, err := cl.CreateIdentityPool(cmd.Context(), req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, fields(p))
		},
	}
	create.Flags().StringVar(&req.ProviderID, "provider", "", "identity provider id (required)")
	create.Flags().StringVar(&req.ServiceAccountID, "service-account", "", "the service account its tokens act as (required)")
	create.Flags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	create.Flags().StringArrayVar(&claims, "claim", nil, "claim=value the token must carry (repeatable; values of one claim are alternatives; this, --filter-expression or both)")
	create.Flags().StringVar(&req.FilterExpression, "filter-expression", "",
		`expression on the token's claims (==, !=, in, &&, ||, !, startsWith, endsWith; e.g. 'claims.sub == "x" || "admins" in claims.groups')`)
	for _, n := range []string{"provider", "service-account"} {
		create.MarkFlagRequired(n)
	}
	cmd.AddCommand(create, &cobra.Command{
		Use: "list", Short: "List identity pools", Args: cobra.NoArgs, Example: "  eddy identity-pool list -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			ps, err := listAll(cmd.Context(), cl.ListIdentityPools)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.ID, p.Name, p.ProviderID, p.ClusterID, p.ServiceAccountID, filterString(p.Filter), p.FilterExpression})
			}
			return f.print(cmd.OutOrStdout(), ps, []string{"ID", "NAME", "PROVIDER", "CLUSTER", "SERVICE ACCOUNT", "FILTER", "FILTER EXPRESSION"}, rows)
		},
	}, &cobra.Command{
		Use: "get ID", Aliases: []string{"describe"}, Short: "Show an identity pool", Args: cobra.ExactArgs(1), Example: "  eddy identity-pool get pool-...",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			p, err := cl.GetIdentityPool(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, fields(p))
		},
	}, &cobra.Command{
		Use: "delete ID", Short: "Delete an identity pool", Args: cobra.ExactArgs(1), Example: "  eddy identity-pool delete pool-...",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteIdentityPool(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted identity pool %s\n", args[0])
			return nil
		},
	})
	return cmd
}

// filterString shows a claim filter as name=value pairs.
func filterString(f map[string][]string) string {
	var parts []string
	for name, vals := range f {
		for _, v := range vals {
			parts = append(parts, name+"="+v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
