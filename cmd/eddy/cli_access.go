package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newServiceAccountCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "service-account", Example: "  eddy service-account create orders-app --description \"the order service\"\n" +
		"  eddy service-account list", Aliases: []string{"service-accounts", "sa"}, Short: "Manage service accounts"}
	f.register(cmd)
	saFields := func(sa client.ServiceAccount) [][2]string {
		return [][2]string{{"ID", sa.ID}, {"Name", sa.Name}, {"Description", sa.Description},
			{"Org admin", fmt.Sprint(sa.OrgAdmin)}, {"Created", sa.CreatedAt.Format(time.RFC3339)}}
	}
	var desc string
	create := &cobra.Command{
		Use: "create NAME", Example: "  eddy service-account create orders-app --description \"the order service\"", Short: "Create a service account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			sa, err := cl.CreateServiceAccount(cmd.Context(), client.CreateServiceAccountRequest{Name: args[0], Description: desc})
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), sa, saFields(sa))
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the account is for")
	cmd.AddCommand(create, &cobra.Command{
		Use: "list", Example: "  eddy service-account list\n" +
			"  eddy service-account list -o yaml", Short: "List service accounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			sas, err := listAll(cmd.Context(), cl.ListServiceAccounts)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, sa := range sas {
				rows = append(rows, []string{sa.ID, sa.Name, fmt.Sprint(sa.OrgAdmin), sa.Description})
			}
			return f.print(cmd.OutOrStdout(), sas, []string{"ID", "NAME", "ORG ADMIN", "DESCRIPTION"}, rows)
		},
	}, &cobra.Command{
		Use: "describe ID", Example: "  eddy service-account describe sa-...", Short: "Show a service account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			sa, err := cl.GetServiceAccount(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), sa, saFields(sa))
		},
	}, &cobra.Command{
		Use: "delete ID", Example: "  eddy service-account delete sa-...", Short: "Delete a service account with its API keys and role bindings", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteServiceAccount(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted service account %s\n", args[0])
			return nil
		},
	})
	return cmd
}

func newAPIKeyCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "api-key", Example: "  eddy api-key create --service-account sa-... --cluster vc-...\n" +
		"  eddy api-key list", Aliases: []string{"api-keys"}, Short: "Manage API keys (rotate: create a new key, switch, delete the old)"}
	f.register(cmd)
	orOrg := func(cluster string) string {
		if cluster == "" {
			return "(organisation)"
		}
		return cluster
	}
	var sa, cluster, desc string
	create := &cobra.Command{
		Use: "create", Example: "  eddy api-key create --service-account sa-... --cluster vc-... --description \"orders producer\"\n" +
			"  eddy api-key create --service-account sa-...   # valid on every cluster of the organisation", Short: "Create an API key; its secret is shown once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sa == "" {
				return fmt.Errorf("--service-account is required")
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			k, err := cl.CreateAPIKey(cmd.Context(), client.CreateAPIKeyRequest{ServiceAccountID: sa, ClusterID: cluster, Description: desc})
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), k, [][2]string{{"ID", k.ID}, {"Secret", k.Secret + "   (shown once; store it now)"},
				{"Service account", k.ServiceAccountID}, {"Scope", orOrg(k.ClusterID)}, {"Description", k.Description}})
		},
	}
	create.Flags().StringVar(&sa, "service-account", "", "service account id (required)")
	create.Flags().StringVar(&cluster, "cluster", "", "limit the key to this cluster")
	create.Flags().StringVar(&desc, "description", "", "what the key is for")
	cmd.AddCommand(create, &cobra.Command{
		Use: "list", Example: "  eddy api-key list", Short: "List API keys (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			ks, err := listAll(cmd.Context(), cl.ListAPIKeys)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, k := range ks {
				rows = append(rows, []string{k.ID, k.ServiceAccountID, orOrg(k.ClusterID), k.CreatedAt.Format(time.RFC3339), k.Description})
			}
			return f.print(cmd.OutOrStdout(), ks, []string{"ID", "SERVICE ACCOUNT", "SCOPE", "CREATED", "DESCRIPTION"}, rows)
		},
	}, &cobra.Command{
		Use: "delete ID", Example: "  eddy api-key delete key-...", Short: "Revoke an API key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteAPIKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted API key %s\n", args[0])
			return nil
		},
	})
	return cmd
}
