package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func clusterFields(c client.Cluster) [][2]string {
	return [][2]string{
		{"ID", c.ID}, {"Name", c.Name}, {"Status", c.Status},
		{"Bootstrap servers", c.Kafka.BootstrapServers},
		{"SASL mechanisms", fmt.Sprint(c.Kafka.SASLMechanisms)},
		{"OAuth token endpoint", c.Kafka.OAuth.TokenEndpoint},
		{"OAuth issuer", c.Kafka.OAuth.Issuer},
		{"OAuth audience", c.Kafka.OAuth.Audience},
		{"Ingress limit", fmt.Sprintf("%d MB/s", c.Limits.IngressMBps)},
		{"Egress limit", fmt.Sprintf("%d MB/s", c.Limits.EgressMBps)},
		{"Partitions", fmt.Sprintf("%d of %d", c.PartitionsUsed, c.Limits.MaxPartitions)},
		{"Storage limit", fmt.Sprintf("%d GB", c.Limits.MaxStorageGB)},
		{"Default topic configs", configString(c.DefaultTopicConfigs)},
		{"Created", c.CreatedAt.Format(time.RFC3339)},
	}
}

func newClusterCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "cluster", Aliases: []string{"clusters"}, Short: "Manage virtual Kafka clusters"}
	f.register(cmd)

	var (
		limits  client.LimitsInput
		lim     struct{ in, out, parts, storage int64 }
		configs []string
		noWait  bool
	)
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a virtual cluster and wait until it is ready", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			set := func(name string, v int64) *int32 {
				if !cmd.Flags().Changed(name) {
					return nil
				}
				n := int32(v)
				return &n
			}
			limits.IngressMBps, limits.EgressMBps, limits.MaxPartitions = set("ingress-mbps", lim.in), set("egress-mbps", lim.out), set("max-partitions", lim.parts)
			if cmd.Flags().Changed("max-storage-gb") {
				limits.MaxStorageGB = &lim.storage
			}
			c, err := cl.CreateCluster(cmd.Context(), client.CreateClusterRequest{Name: args[0], Limits: &limits, DefaultTopicConfigs: cfg})
			if err != nil {
				return err
			}
			if !noWait {
				c, err = waitReady(cmd, cl, c)
				if err != nil {
					return err
				}
			}
			return f.describe(cmd.OutOrStdout(), c, clusterFields(c))
		},
	}
	create.Flags().Int64Var(&lim.in, "ingress-mbps", 100, "produce limit, MB/s")
	create.Flags().Int64Var(&lim.out, "egress-mbps", 300, "fetch limit, MB/s")
	create.Flags().Int64Var(&lim.parts, "max-partitions", 1000, "partitions over all topics")
	create.Flags().Int64Var(&lim.storage, "max-storage-gb", 1024, "storage limit, GB")
	create.Flags().StringArrayVar(&configs, "config", nil, "default topic config name=value (repeatable)")
	create.Flags().BoolVar(&noWait, "no-wait", false, "return while the cluster is still provisioning")

	list := &cobra.Command{
		Use: "list", Short: "List virtual clusters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			cs, err := listAll(cmd.Context(), cl.ListClusters)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, c := range cs {
				rows = append(rows, []string{c.ID, c.Name, c.Status, strconv.Itoa(int(c.PartitionsUsed)) + "/" + strconv.Itoa(int(c.Limits.MaxPartitions)), c.Kafka.BootstrapServers})
			}
			return f.print(cmd.OutOrStdout(), cs, []string{"ID", "NAME", "STATUS", "PARTITIONS", "BOOTSTRAP"}, rows)
		},
	}
	describe := &cobra.Command{
		Use: "describe ID", Short: "Show a cluster and how to connect to it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			c, err := cl.GetCluster(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), c, clusterFields(c))
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a cluster with all its topics and data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteCluster(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted cluster %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, describe, del)
	return cmd
}

// waitReady polls until the cluster is ready, keeping one progress line
// on stderr up to date.
func waitReady(cmd *cobra.Command, cl *client.Client, c client.Cluster) (client.Cluster, error) {
	start := time.Now()
	w := cmd.ErrOrStderr()
	progress := func(c client.Cluster) {
		fmt.Fprintf(w, "\rcluster %s (%s): %s ... %.1fs", c.ID, c.Name, c.Status, time.Since(start).Seconds())
	}
	c, err := cl.WaitClusterReady(cmd.Context(), c.ID, progress)
	if err != nil {
		fmt.Fprintln(w)
		return c, err
	}
	fmt.Fprintln(w)
	return c, nil
}
