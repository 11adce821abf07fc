package main

import (
	"encoding/json"
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
		{"Topic limit", strconv.Itoa(int(c.Limits.MaxTopics))},
		{"Group limit", strconv.Itoa(int(c.Limits.MaxGroups))},
		{"Producer ids", fmt.Sprintf("%d/h, burst %d", c.Limits.ProducerIDsPerHour, c.Limits.ProducerIDBurst)},
		{"Plan", c.Plan},
		{"Capped by the plan", cappedString(c.Limits, c.EffectiveLimits)},
		{"Default topic configs", configString(c.DefaultTopicConfigs)},
		{"Broker configs", configString(c.BrokerConfigs)},
		{"Allowed from", allowedString(c.AllowedCIDRs)},
		{"Created", c.CreatedAt.Format(time.RFC3339)},
	}
}

// allowedString shows an allow-list; none means from anywhere.
func allowedString(cidrs []string) string {
	if len(cidrs) == 0 {
		return "anywhere"
	}
	return strings.Join(cidrs, ", ")
}

// cappedString lists the limits the plan's ceilings hold below the
// cluster's own, at their effective value ("-" for none).
func cappedString(own, effective limits.Limits) string {
	o, e := limitValues(own), limitValues(effective)
	var out []string
	for _, h := range limitFlagHelp {
		if e[h.field] < o[h.field] {
			out = append(out, fmt.Sprintf("%s=%d", h.field, e[h.field]))
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}

func newClusterCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "cluster", Example: "  eddy cluster create orders-prod --max-partitions 200\n" +
		"  eddy cluster list", Aliases: []string{"clusters"}, Short: "Manage virtual Kafka clusters"}
	f.register(cmd)

	var (
		lim           limitFlags
		configs       []string
		brokerConfigs []string
		allowCIDRs    []string
		noWait        bool
	)
	create := &cobra.Command{
		Use: "create NAME", Example: "  eddy cluster create orders-prod\n" +
			"  eddy cluster create orders-prod --ingress-mbps 50 --max-partitions 200 --config retention.ms=86400000", Short: "Create a virtual cluster and wait until it is ready", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			bcfg, err := parseFlagConfigs("broker-config", brokerConfigs)
			if err != nil {
				return err
			}
			l, err := lim.given(cmd.Flags())
			if err != nil {
				return err
			}
			c, err := cl.CreateCluster(cmd.Context(), client.CreateClusterRequest{Name: args[0], Limits: l, DefaultTopicConfigs: cfg,
				BrokerConfigs: bcfg, AllowedCIDRs: allowCIDRs})
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
	create.Flags().StringArrayVar(&brokerConfigs, "broker-config", nil, "Kafka broker config name=value, e.g. num.partitions=6 (repeatable)")
	create.Flags().BoolVar(&noWait, "no-wait", false, "return while the cluster is still provisioning")
	create.Flags().StringArrayVar(&allowCIDRs, "allow-cidr", nil, "CIDR block or IP address the cluster's clients may connect from (repeatable; default: anywhere)")

	list := &cobra.Command{
		Use: "list", Example: "  eddy cluster list\n" +
			"  eddy cluster list -o json", Short: "List virtual clusters", Args: cobra.NoArgs,
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
		Use: "describe ID", Example: "  eddy cluster describe vc-...", Short: "Show a cluster and how to connect to it", Args: cobra.ExactArgs(1),
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
		Use: "delete ID", Example: "  eddy cluster delete vc-...", Short: "Delete a cluster with all its topics and data", Args: cobra.ExactArgs(1),
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
		upLim         limitFlags
		rename        string
		upBrokerConfs []string
		upAllowCIDRs  []string
	)
	update := &cobra.Command{
		Use: "update ID", Example: "  eddy cluster update vc-... --name orders\n" +
			"  eddy cluster update vc-... --max-connections 500 --egress-mbps 200\n" +
			"  eddy cluster update vc-... --broker-config num.partitions=6 --broker-config log.retention.ms=86400000",
		Short: "Rename a cluster, change its limits or its broker configs; what is not given stays as it is", Args: cobra.ExactArgs(1),
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
			if cmd.Flags().Changed("broker-config") {
				bcfg, err := parseFlagConfigs("broker-config", upBrokerConfs)
				if err != nil {
					return err
				}
				if bcfg == nil {
					bcfg = map[string]string{}
				}
				req.BrokerConfigs = &bcfg
			}
			if cmd.Flags().Changed("allow-cidr") {
				list := []string{}
				for _, c := range upAllowCIDRs {
					if c != "" { // --allow-cidr "" clears the list
						list = append(list, c)
					}
				}
				req.AllowedCIDRs = &list
			}
			if req.Name == nil && req.Limits == nil && req.BrokerConfigs == nil && req.AllowedCIDRs == nil {
				return fmt.Errorf("nothing to update: give --name, a limit, --broker-config or --allow-cidr")
			}
			c, err := cl.UpdateCluster(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), c, clusterFields(c))
		},
	}
	update.Flags().StringVar(&rename, "name", "", "new name")
	update.Flags().StringArrayVar(&upAllowCIDRs, "allow-cidr", nil, `CIDR block or IP address clients may connect from (repeatable); replaces the allow-list, --allow-cidr "" removes it`)
	update.Flags().StringArrayVar(&upBrokerConfs, "broker-config", nil,
		"Kafka broker config name=value (repeatable); replaces the cluster's broker configs, those not given return to their defaults")
	upLim.register(update.Flags(), false)
	cmd.AddCommand(create, list, describe, update, del)
	return cmd
}

// limitFlagHelp is every limit's flag help, in the order of
// limits.Limits' fields; a flag is named for its field ("max-topics").
var limitFlagHelp = []struct{ field, help string }{
	{"ingress_mbps", "produce limit, MB/s"},
	{"egress_mbps", "fetch limit, MB/s"},
	{"max_requests_per_sec", "Kafka requests per second, over all brokers"},
	{"max_connections", "Kafka connections open at once, over all brokers"},
	{"max_partitions", "partitions over all topics"},
	{"max_storage_gb", "storage limit, GB"},
	{"max_topics", "topics"},
	{"max_groups", "consumer groups"},
	{"producer_ids_per_hour", "producer ids (InitProducerId) per hour once the burst is spent"},
	{"producer_id_burst", "producer ids at once"},
	{"max_retention_ms", "largest retention.ms of a topic (the maximum: unlimited)"},
	{"max_retention_bytes", "largest retention.bytes of a topic (the maximum: unlimited)"},
}

// limitFlags are the limit flags of cluster create and update, and the
// ceiling flags of plan create and update: one per field of
// limits.Limits, by JSON name.
type limitFlags map[string]*int64

// register adds the flags to fs, with limits' defaults for cluster
// create; the others show none, as a flag left out keeps the value (or,
// for a new plan, the widest).
func (l *limitFlags) register(fs *pflag.FlagSet, withDefaults bool) {
	*l = limitFlags{}
	for _, h := range limitFlagHelp {
		var def int64
		if withDefaults {
			def = limits.BoundOf(h.field).Default
		}
		(*l)[h.field] = fs.Int64(strings.ReplaceAll(h.field, "_", "-"), def, h.help)
	}
}

// given returns the limits whose flags were given, the others zero (the
// server leaves those alone), or nil if none was. A value out of its
// limit's bounds is refused here: a zero could not even be sent, as zero
// means unset.
func (l limitFlags) given(fs *pflag.FlagSet) (*limits.Limits, error) {
	set := map[string]int64{}
	var errs []error
	for _, h := range limitFlagHelp {
		name := strings.ReplaceAll(h.field, "_", "-")
		if !fs.Changed(name) {
			continue
		}
		n := *l[h.field]
		if b := limits.BoundOf(h.field); n < b.Min || n > b.Max {
			errs = append(errs, fmt.Errorf("--%s must be from %d to %d, not %d", name, b.Min, b.Max, n))
		}
		set[h.field] = n
	}
	if err := errors.Join(errs...); err != nil || len(set) == 0 {
		return nil, err
	}
	// The JSON names are limits' wire format: decoding by them sets the
	// fields without a second table of them here.
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var out limits.Limits
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// limitValues maps limits' JSON names to l's values.
func limitValues(l limits.Limits) map[string]int64 {
	b, _ := json.Marshal(l)
	var m map[string]int64
	_ = json.Unmarshal(b, &m)
	return m
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
