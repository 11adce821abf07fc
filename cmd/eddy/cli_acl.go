package main

// `eddy acl ...` and `eddy role-binding ...`: who may do what on a
// cluster, through the REST API (the same ACLs Kafka's admin API manages).

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newACLCmd() *cobra.Command {
	var (
		f       apiFlags
		cluster string
	)
	cmd := &cobra.Command{Use: "acl", Example: "  eddy acl create --principal User:sa-... --operation read --topic orders\n" +
		"  eddy acl list --cluster vc-...", Aliases: []string{"acls"}, Short: "Manage the Kafka ACLs of a cluster (a deny wins over every grant, roles included)"}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	aclFields := func(a client.ACL) [][2]string {
		return [][2]string{{"ID", a.ID}, {"Principal", a.Principal}, {"Resource", a.ResourceType + " " + a.ResourceName + " (" + a.PatternType + ")"},
			{"Operation", a.Operation}, {"Permission", a.Permission}, {"Host", a.Host}, {"Created", a.CreatedAt.Format(time.RFC3339)}}
	}

	var req client.CreateACLRequest
	create := &cobra.Command{
		Use: "create", Short: "Create an ACL", Args: cobra.NoArgs,
		Example: "  eddy acl create --principal User:sa-123 --operation read --topic orders. --pattern prefixed\n" +
			"  eddy acl create --principal User:* --operation write --permission deny --topic secret --host 10.0.0.7\n" +
			"  eddy acl create --principal User:sa-123 --operation read --group billing",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := aclResource(cmd, &req); err != nil {
				return err
			}
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			a, err := cl.CreateACL(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), a, aclFields(a))
		},
	}
	fs := create.Flags()
	fs.StringVar(&req.Principal, "principal", "", `"User:<service-account-id>" or "User:*" (required)`)
	fs.StringVar(&req.Operation, "operation", "", "all, read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs or idempotent_write (required)")
	fs.StringVar(&req.Permission, "permission", client.ACLAllow, "allow or deny")
	fs.StringVar(&req.PatternType, "pattern", client.ACLPatternLiteral, "literal or prefixed (the name is a prefix)")
	fs.StringVar(&req.Host, "host", "*", `"*", the client's IP address, or a CIDR block (10.0.0.0/8)`)
	fs.String("topic", "", "the topic (or topic prefix) the ACL is about")
	fs.String("group", "", "the consumer group (or prefix)")
	fs.String("transactional-id", "", "the transactional id (or prefix)")
	fs.Bool("cluster-resource", false, "the cluster itself ("+client.ACLClusterName+")")
	create.MarkFlagsOneRequired("topic", "group", "transactional-id", "cluster-resource")
	create.MarkFlagsMutuallyExclusive("topic", "group", "transactional-id", "cluster-resource")
	create.MarkFlagRequired("principal")
	create.MarkFlagRequired("operation")

	list := &cobra.Command{
		Use: "list", Short: "List a cluster's ACLs", Args: cobra.NoArgs,
		Example: "  eddy acl list --cluster vc-...\n  eddy acl list -o yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := listInCluster(cmd.Context(), &f, cluster, (*client.Client).ListACLs)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, a := range as {
				rows = append(rows, []string{a.ID, a.Principal, a.Permission, a.Operation, a.ResourceType, a.ResourceName, a.PatternType, a.Host})
			}
			return f.print(cmd.OutOrStdout(), as, []string{"ID", "PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN", "HOST"}, rows)
		},
	}
	del := deleteInCluster(&f, &cluster, "ACL", (*client.Client).DeleteACL)
	del.Short, del.Example = "Delete an ACL (ACLs are not changed: delete and create)", "  eddy acl delete acl-..."
	cmd.AddCommand(create, list, del)
	return cmd
}

// aclResource sets req's resource from whichever resource flag was given
// (cobra has checked that exactly one was).
func aclResource(cmd *cobra.Command, req *client.CreateACLRequest) error {
	fs := cmd.Flags()
	for _, r := range []struct{ flag, typ string }{
		{"topic", client.ACLResourceTopic}, {"group", client.ACLResourceGroup}, {"transactional-id", client.ACLResourceTransactionalID},
	} {
		if !fs.Changed(r.flag) {
			continue
		}
		name, err := fs.GetString(r.flag)
		if err != nil {
			return err
		}
		req.ResourceType, req.ResourceName = r.typ, name
		return nil
	}
	req.ResourceType, req.ResourceName = client.ACLResourceCluster, client.ACLClusterName
	return nil
}

func newRoleBindingCmd() *cobra.Command {
	var (
		f       apiFlags
		cluster string
	)
	cmd := &cobra.Command{Use: "role-binding", Example: "  eddy role-binding create --service-account sa-... --role developer-read\n" +
		"  eddy role-binding list --cluster vc-...", Aliases: []string{"role-bindings", "rb"},
		Short: "Grant service accounts a role on a cluster (" + client.RoleAdmin + ", " + client.RoleDeveloperRead + ", " + client.RoleDeveloperWrite + ")"}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	rbFields := func(b client.RoleBinding) [][2]string {
		return [][2]string{{"ID", b.ID}, {"Service account", b.ServiceAccountID}, {"Role", b.Role}, {"Cluster", b.ClusterID}, {"Created", b.CreatedAt.Format(time.RFC3339)}}
	}

	var req client.CreateRoleBindingRequest
	create := &cobra.Command{
		Use: "create", Short: "Bind a role to a service account", Args: cobra.NoArgs,
		Example: "  eddy role-binding create --service-account sa-... --role developer-write --cluster vc-...",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			b, err := cl.CreateRoleBinding(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), b, rbFields(b))
		},
	}
	create.Flags().StringVar(&req.ServiceAccountID, "service-account", "", "service account id (required)")
	create.Flags().StringVar(&req.Role, "role", "", client.RoleAdmin+", "+client.RoleDeveloperRead+" or "+client.RoleDeveloperWrite+" (required)")
	create.MarkFlagRequired("service-account")
	create.MarkFlagRequired("role")
	create.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{client.RoleAdmin, client.RoleDeveloperRead, client.RoleDeveloperWrite}, cobra.ShellCompDirectiveNoFileComp))

	list := &cobra.Command{
		Use: "list", Short: "List a cluster's role bindings", Args: cobra.NoArgs,
		Example: "  eddy role-binding list --cluster vc-...",
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := listInCluster(cmd.Context(), &f, cluster, (*client.Client).ListRoleBindings)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, b := range bs {
				rows = append(rows, []string{b.ID, b.ServiceAccountID, b.Role, b.CreatedAt.Format(time.RFC3339)})
			}
			return f.print(cmd.OutOrStdout(), bs, []string{"ID", "SERVICE ACCOUNT", "ROLE", "CREATED"}, rows)
		},
	}
	del := deleteInCluster(&f, &cluster, "role binding", (*client.Client).DeleteRoleBinding)
	del.Example = "  eddy role-binding delete rb-... --cluster vc-..."
	cmd.AddCommand(create, list, del)
	return cmd
}

// deleteInCluster is the `delete ID` command of a cluster's ACLs or role
// bindings (what), deleting with del.
func deleteInCluster(f *apiFlags, cluster *string, what string, del func(*client.Client, context.Context, string, string) error) *cobra.Command {
	return &cobra.Command{
		Use: "delete ID", Short: "Delete a " + what, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := f.clusterClient(*cluster)
			if err != nil {
				return err
			}
			if err := del(cl, cmd.Context(), id, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s %s\n", what, args[0])
			return nil
		},
	}
}
