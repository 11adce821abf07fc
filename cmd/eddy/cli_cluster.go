package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
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
		{"Request limit", fmt.Sprintf("%d/s", c.Limits.MaxRequestsPerSec)},
		{"Connection limit", strconv.Itoa(int(c.Limits.MaxConnections))},
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
		lim     limitFlags
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
			l, err := lim.given(cmd.Flags())
			if err != nil {
				return err
			}
			c, err := cl.CreateCluster(cmd.Context(), client.CreateClusterRequest{Name: args[0], Limits: l, DefaultTopicConfigs: cfg})
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
	lim.register(create.Flags(), true)
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
	var (
		upLim  limitFlags
		rename string
	)
	update := &cobra.Command{
		Use: "update ID", Short: "Rename a cluster or change its limits; what is not given stays as it is", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			l, err := upLim.given(cmd.Flags())
			if err != nil {
				return err
			}
			req := client.UpdateClusterRequest{Limits: l}
			if cmd.Flags().Changed("name") {
				req.Name = &rename
			}
			if req.Name == nil && req.Limits == nil {
				return fmt.Errorf("nothing to update: give --name or a limit")
			}
			c, err := cl.UpdateCluster(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), c, clusterFields(c))
		},
	}
	update.Flags().StringVar(&rename, "name", "", "new name")
	upLim.register(update.Flags(), false)
	cmd.AddCommand(create, list, describe, update, del)
	return cmd
}

// limitFlags are the limit flags of cluster create and update, one per
// field of limits.Limits.
type limitFlags struct{ in, out, reqs, conns, parts, storage int64 }

// register adds the flags to fs, with limits' defaults for create; update
// shows none, as a flag left out keeps the cluster's value.
func (l *limitFlags) register(fs *pflag.FlagSet, withDefaults bool) {
	def := func(field string) int64 {
		if withDefaults {
			return limits.BoundOf(field).Default
		}
		return 0
	}
	fs.Int64Var(&l.in, "ingress-mbps", def("ingress_mbps"), "produce limit, MB/s")
	fs.Int64Var(&l.out, "egress-mbps", def("egress_mbps"), "fetch limit, MB/s")
	fs.Int64Var(&l.reqs, "max-requests-per-sec", def("max_requests_per_sec"), "Kafka requests per second, over all brokers")
	fs.Int64Var(&l.conns, "max-connections", def("max_connections"), "Kafka connections open at once, over all brokers")
	fs.Int64Var(&l.parts, "max-partitions", def("max_partitions"), "partitions over all topics")
	fs.Int64Var(&l.storage, "max-storage-gb", def("max_storage_gb"), "storage limit, GB")
}

// given returns the limits whose flags were given, the others zero (the
// server leaves those alone), or nil if none was. A value out of its
// limit's bounds is refused here: a zero could not even be sent, as zero
// means unset.
func (l *limitFlags) given(fs *pflag.FlagSet) (*limits.Limits, error) {
	var (
		out  limits.Limits
		set  bool
		errs []error
	)
	v := func(name string, n int64) int64 {
		if !fs.Changed(name) {
			return 0
		}
		set = true
		if b := limits.BoundOf(strings.ReplaceAll(name, "-", "_")); n < b.Min || n > b.Max {
			errs = append(errs, fmt.Errorf("--%s must be from %d to %d, not %d", name, b.Min, b.Max, n))
		}
		return n
	}
	out.IngressMBps, out.EgressMBps = int32(v("ingress-mbps", l.in)), int32(v("egress-mbps", l.out))
	out.MaxRequestsPerSec, out.MaxConnections = int32(v("max-requests-per-sec", l.reqs)), int32(v("max-connections", l.conns))
	out.MaxPartitions, out.MaxStorageGB = int32(v("max-partitions", l.parts)), v("max-storage-gb", l.storage)
	if err := errors.Join(errs...); err != nil || !set {
		return nil, err
	}
	return &out, nil
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
